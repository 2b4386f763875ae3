from softalign.cli import main

raise SystemExit(main())
