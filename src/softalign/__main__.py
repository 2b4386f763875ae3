from softalign.cli import run

raise SystemExit(run())
