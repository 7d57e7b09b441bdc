"""``benchmarks/real_anatomy.py --results`` rewrites only its own section of RESULTS.md: the
notes written by hand under it (sessions' subsections) must survive a rerun."""

from __future__ import annotations

from pathlib import Path

from _benchscripts import load_benchmark


def test_rewriting_the_section_keeps_what_follows_its_end_marker(tmp_path: Path) -> None:
    mod = load_benchmark("real_anatomy")
    path = tmp_path / "RESULTS.md"
    end = mod.SECTION_END
    path.write_text(
        "# Benchmark results\n\n## predict\n\nold predict\n\n## real anatomy\n\nold table\n\n"
        f"{end}\n\nhand note\n\n### A session's try\n\nkept\n",
        encoding="utf-8",
    )
    mod._write_section(path, f"## real anatomy\n\nnew table\n\n{end}\n")
    text = path.read_text(encoding="utf-8")
    assert "old table" not in text and "new table" in text
    assert "hand note" in text and "### A session's try\n\nkept" in text
    assert "old predict" in text and text.count("## real anatomy") == 1
    assert text.index("new table") < text.index("hand note")


def test_a_section_without_the_marker_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    import pytest

    mod = load_benchmark("real_anatomy")
    path = tmp_path / "RESULTS.md"
    # the marker of a later section must not be taken for this one's
    before = (
        "# R\n\n## real anatomy\n\nold table\n\n### note\n\nkept\n\n## other\n\nx\n\n"
        f"{mod.SECTION_END}\n"
    )
    path.write_text(before, encoding="utf-8")
    with pytest.raises(ValueError, match="no line"):
        mod._write_section(path, f"## real anatomy\n\nnew table\n\n{mod.SECTION_END}\n")
    assert path.read_text(encoding="utf-8") == before


def test_rewriting_twice_and_into_a_file_without_the_section(tmp_path: Path) -> None:
    mod = load_benchmark("real_anatomy")
    path = tmp_path / "RESULTS.md"
    path.write_text("# R\n\n## predict\n\np\n", encoding="utf-8")
    for table in ("first", "second"):
        mod._write_section(path, f"## real anatomy\n\n{table}\n\n{mod.SECTION_END}\n")
        with path.open("a", encoding="utf-8") as f:
            f.write(f"\nnote after {table}\n")
    text = path.read_text(encoding="utf-8")
    assert (
        text.count("## real anatomy") == 1 and "\n\nfirst\n" not in text and "\n\nsecond\n" in text
    )
    assert "note after first" in text and "note after second" in text and "## predict" in text
