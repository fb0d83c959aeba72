"""Input errors are one line naming the file (and the line or field where it applies): the
APIs raise a dedicated error type (GraphFormatError, DataFormatError), the CLI exits with
code 2 and one line on stderr, never a traceback."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from kgfuse.kg.formats import GraphFormatError, open_graph
from kgfuse.kg.loaders import LoadReport, from_conceptnet, from_triples, from_wordnet
from kgfuse.tasks.cli import main
from kgfuse.tasks.datasets import DataFormatError, load_examples, load_swag

ROWS = "".join(f"head{i}\trel\ttail{i}\n" for i in range(3000))
TRUNCATED = r"truncated or corrupt gzip file \(after line \d+\)"
SWAG_HEADER = "video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label\n"


def cn_line(start: str, end: str, rel: str = "AtLocation") -> bytes:
    return "\t".join((f"/a/[/r/{rel}/,{start}/,{end}/]", f"/r/{rel}", start, end, '{"weight": 1.0}')).encode() + b"\n"


def mc_line(i: int, question: str = "where is a plate?") -> bytes:
    rec = {"id": f"q{i}", "question": question, "choices": ["cupboard", "sky"], "label": 0}
    return json.dumps(rec).encode() + b"\n"


def truncated_gzip(path: Path, data: bytes) -> Path:
    packed = gzip.compress(data)
    path.write_bytes(packed[: len(packed) // 2])
    return path


def cli_error(capsys, argv: list[str]) -> str:
    """Run the CLI, check exit code 2 and a single stderr line without a traceback; return it."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


# ---------------------------------------------------------------- 1. truncated or corrupt gzip
def test_truncated_gzip_table_names_file_and_last_line(tmp_path):
    p = truncated_gzip(tmp_path / "cn4.tsv.gz", ROWS.encode())
    for load in (open_graph, from_triples):
        with pytest.raises(GraphFormatError, match=r"cn4\.tsv\.gz: " + TRUNCATED) as ei:
            load(p)
        assert ei.value.reason == "gzip" and ei.value.path == str(p)


def test_corrupt_gzip_crc_is_reported(tmp_path):
    packed = bytearray(gzip.compress(ROWS.encode()))
    packed[-6] ^= 0xFF  # the CRC-32 of the trailer
    p = tmp_path / "t.tsv.gz"
    p.write_bytes(bytes(packed))
    with pytest.raises(GraphFormatError, match=r"t\.tsv\.gz: truncated or corrupt gzip file \(after line \d+\): CRC"):
        open_graph(p)


def test_truncated_gzip_conceptnet(tmp_path):
    data = b"".join(cn_line(f"/c/en/a{i}", f"/c/en/b{i}") for i in range(3000))
    p = truncated_gzip(tmp_path / "assertions.csv.gz", data)
    with pytest.raises(GraphFormatError, match=r"assertions\.csv\.gz: " + TRUNCATED):
        from_conceptnet(p)


def test_datasets_read_gzip_and_report_a_truncated_one(tmp_path):
    data = b"".join(mc_line(i) for i in range(2000))
    good = tmp_path / "dev.jsonl.gz"
    good.write_bytes(gzip.compress(data))
    exs, rep = load_examples(good)
    assert len(exs) == 2000 and rep.format == "mc"
    bad = truncated_gzip(tmp_path / "train.jsonl.gz", data)
    for lenient in (False, True):  # the rest of the file cannot be read: an error either way
        with pytest.raises(DataFormatError, match=r"train\.jsonl\.gz: " + TRUNCATED) as ei:
            load_examples(bad, "mc", lenient=lenient)
        assert ei.value.reason == "gzip"


def test_swag_csv_gzip(tmp_path):
    p = tmp_path / "val.csv.gz"
    p.write_bytes(gzip.compress((SWAG_HEADER + "v1,0,x,A man sits.,He,gold,eats.,runs.,sings.,sleeps.,0\n").encode()))
    exs, rep = load_examples(p)
    assert rep.format == "swag" and exs[0].choices[0] == "He eats."


# ---------------------------------------------------------------- 2. text that is not UTF-8
def test_table_non_utf8_line_strict_and_counted(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_bytes(b"a\tr\tb\nc\tr\td\xff\ne\tr\tf\n")
    with pytest.raises(GraphFormatError, match=r"t\.tsv, line 2, field 'tail' \(column 3\): not valid utf-8 "
                                               r"\(byte 0xff at character 6\)") as ei:
        from_triples(p, strict=True)
    assert ei.value.line == 2 and ei.value.reason == "encoding"
    kg = from_triples(p, add_inverse=False)
    rep = LoadReport.from_dict(kg.meta["report"])
    assert kg.num_edges == 2 and rep.malformed == {"encoding": 1}
    assert rep.examples[0]["line"] == 2 and rep.examples[0]["reason"] == "encoding"
    json.dumps(kg.meta, ensure_ascii=False).encode("utf-8")  # the report stays valid text (saveable)


def test_conceptnet_non_utf8_line_strict_and_counted(tmp_path):
    p = tmp_path / "assertions.csv"
    bad = cn_line("/c/en/pl_te", "/c/en/x").replace(b"pl_te", b"pl\xe4te")  # latin-1, not UTF-8
    p.write_bytes(cn_line("/c/en/plate", "/c/en/cupboard") + bad)
    with pytest.raises(GraphFormatError, match=r"assertions\.csv, line 2, field 'start' \(column 3\): not valid UTF-8"):
        from_conceptnet(p, strict=True)
    kg = from_conceptnet(p)
    rep = LoadReport.from_dict(kg.meta["report"])
    assert rep.malformed == {"encoding": 1} and rep.examples[0]["line"] == 2 and rep.kept == 1


def test_jsonl_non_utf8_line_strict_and_lenient(tmp_path):
    p = tmp_path / "dev.jsonl"
    p.write_bytes(mc_line(1) + mc_line(2, "caf\xe9?").replace(b"\\u00e9", b"\xe9") + mc_line(3))
    with pytest.raises(DataFormatError, match=r"dev\.jsonl, line 2: not valid UTF-8 \(byte 0xe9") as ei:
        load_examples(p)
    assert ei.value.line == 2 and ei.value.reason == "encoding"
    exs, rep = load_examples(p, lenient=True)
    assert [e.id for e in exs] == ["q1", "q3"] and rep.reasons == {"encoding": 1} and "line 2" in rep.problems[0]


def test_jsonl_first_line_non_utf8_is_reported_not_misread_as_a_format(tmp_path):
    p = tmp_path / "dev.jsonl"
    p.write_bytes(mc_line(1, "caf\xe9?").replace(b"\\u00e9", b"\xe9") + mc_line(2))
    with pytest.raises(DataFormatError, match=r"dev\.jsonl, line 1: not valid UTF-8"):
        load_examples(p)
    exs, rep = load_examples(p, lenient=True)  # sniffed from the next line, the bad one skipped
    assert [e.id for e in exs] == ["q2"] and rep.reasons == {"encoding": 1}


def test_swag_csv_non_utf8_cell_strict_and_lenient(tmp_path):
    p = tmp_path / "val.csv"
    p.write_bytes(SWAG_HEADER.encode() + b"v1,0,x,A man sits.,He,gold,eats.,runs.,sings.,sleeps.,0\n"
                  b"v2,0,x,A dog barks.,It,gold,eats.,r\xfcns.,sings.,sleeps.,1\n")
    with pytest.raises(DataFormatError, match=r"val\.csv, line 3, id 'v2-0', field 'ending1': not valid UTF-8 "
                                              r"\(byte 0xfc"):
        load_swag(p)
    exs, rep = load_swag(p, lenient=True)
    assert len(exs) == 1 and rep.reasons == {"encoding": 1}


# ---------------------------------------------------------------- 3. unknown formats
def test_unknown_data_format_lists_valid_ones_and_the_closest(tmp_path):
    p = tmp_path / "dev.jsonl"
    p.write_bytes(mc_line(1))
    with pytest.raises(DataFormatError) as ei:
        load_examples(p, "cqsa")
    assert str(ei.value) == f"{p}: unknown data format 'cqsa' (did you mean 'csqa'?); valid: auto, csqa, mc, obqa, swag"


def test_unknown_graph_format_lists_valid_ones_and_the_closest(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("a\tr\tb\n")
    with pytest.raises(GraphFormatError, match=r"t\.tsv: unknown graph format 'tabel' \(did you mean 'table'\?\); "
                                               r"valid: auto, compiled, conceptnet"):
        open_graph(p, "tabel")
    q = tmp_path / "x.bin"
    q.write_bytes(b"\0")
    with pytest.raises(GraphFormatError, match=r"x\.bin: cannot tell the graph format"):
        open_graph(q)


# ---------------------------------------------------------------- 4. graphs without edges
@pytest.mark.parametrize("text, counts", [
    ("", "(the file is empty)"),
    ("head\trelation\ttail\n", "(1 line: 1 header)"),
    ("head\trelation\ttail\nonly two\nfields here\n", "(3 lines: 1 header, 2 malformed (columns: 2); "
                                                      "first malformed: line 2"),
    ("# a comment\n\n", "(2 lines: 1 blank, 1 comment)"),
])
def test_graph_without_edges_is_an_error_unless_allowed(tmp_path, text, counts):
    p = tmp_path / "x.tsv"
    p.write_text(text)
    for load in (open_graph, from_triples):
        with pytest.raises(GraphFormatError) as ei:
            load(p)
        assert str(ei.value).startswith(f"{p}: no edges loaded {counts}")
        assert "allow_empty=True" in str(ei.value) and ei.value.reason == "empty"
        empty = load(p, allow_empty=True)
        # the error carries the report the graph would have recorded
        assert empty.num_edges == 0 and ei.value.report == LoadReport.from_dict(empty.meta["report"])
    # reports compare by what was read, not by how long the load took
    assert LoadReport(source="a", lines=2, seconds=0.0) == LoadReport(source="a", lines=2, seconds=0.012)
    assert LoadReport(source="a", lines=2) != LoadReport(source="a", lines=3)


def test_graph_whose_rows_are_all_skipped(tmp_path):
    p = tmp_path / "x.tsv"
    p.write_text("a\tnot_a_conceptnet_relation\tb\n")
    with pytest.raises(GraphFormatError, match=r"x\.tsv: no edges loaded \(1 line: 1 relation\)"):
        from_triples(p, relations="merged17")
    c = tmp_path / "assertions.csv"
    c.write_bytes(cn_line("/c/de/teller", "/c/de/schrank"))
    with pytest.raises(GraphFormatError, match=r"assertions\.csv: no edges loaded \(1 line: 1 language\)"):
        open_graph(c)
    assert open_graph(c, allow_empty=True).num_edges == 0


def test_networkx_file_without_edges_and_unreadable(tmp_path):
    nx = pytest.importorskip("networkx")
    G = nx.DiGraph()
    G.add_nodes_from(["a", "b"])
    p = tmp_path / "g.graphml"
    nx.write_graphml(G, p)
    with pytest.raises(GraphFormatError, match=r"g\.graphml: no edges loaded \(2 nodes, 0 edges\)"):
        open_graph(p)
    assert open_graph(p, allow_empty=True).num_concepts == 2
    q = tmp_path / "bad.graphml"
    q.write_text("<graphml><graph")
    with pytest.raises(GraphFormatError, match=r"bad\.graphml: not a readable GraphML file"):
        open_graph(q)


# ---------------------------------------------------------------- 5. a string where a list is expected
def write_wordnet(root: Path) -> Path:
    header = "  1 This is a license line\n"
    (root / "data.noun").write_text(
        header
        + "00000010 03 n 02 dog 0 domestic_dog 0 001 @ 00000020 n 0000 | a dog\n"
        + "00000020 03 n 01 canine 0 001 ~ 00000010 n 0000 | a canine\n")
    for f in ("data.verb", "data.adj", "data.adv"):
        (root / f).write_text(header)
    return root


def test_wordnet_list_options_take_one_name_or_a_list_never_letters(tmp_path):
    root = write_wordnet(tmp_path)
    one = from_wordnet(root, pos="n", relations="hypernym", synonyms=False)
    assert set(one.relations) == {"hypernym"} and one.num_edges == 2
    assert from_wordnet(root, pos=["n"], relations=["hypernym"], synonyms=False).hash == one.hash
    with pytest.raises(ValueError, match=r"unknown part of speech 'noun' in pos='noun'; use some of 'n', 'v', 'a'"):
        from_wordnet(root, pos="noun")
    with pytest.raises(ValueError, match=r"unknown WordNet relation 'hypernyms' \(did you mean 'hypernym'\?\)"):
        from_wordnet(root, relations=["hypernyms"])
    with pytest.raises(TypeError, match="pos must be a list of names or one name"):
        from_wordnet(root, pos=3)


def test_wordnet_without_edges_names_the_folder(tmp_path):
    root = write_wordnet(tmp_path)
    with pytest.raises(GraphFormatError, match=rf"{tmp_path.name}: no edges loaded \(6 lines: 4 license header, "
                                               r"2 relation, 2 records kept\)"):
        from_wordnet(root, relations=["antonym"], synonyms=False)


def test_triples_options_reject_strings_that_are_not_what_they_look_like(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("a\tr\tb\n")
    with pytest.raises(TypeError, match="not the string 'head'"):
        from_triples(p, columns="head")
    with pytest.raises(TypeError, match="header must be True, False or None"):
        from_triples(p, header="yes")
    with pytest.raises(GraphFormatError, match=r"t\.tsv: unknown column role 'haed' \(did you mean 'head'\?\)"):
        from_triples(p, columns={"haed": 0, "relation": 1, "tail": 2})


# ---------------------------------------------------------------- 6. the CLI: exit code 2, one line
def test_cli_graph_info_and_link_on_bad_graph_files(tmp_path, capsys):
    trunc = truncated_gzip(tmp_path / "cn4.tsv.gz", ROWS.encode())
    err = cli_error(capsys, ["graph", "info", str(trunc)])
    assert "cn4.tsv.gz: truncated or corrupt gzip file (after line" in err
    err = cli_error(capsys, ["link", "--graph", str(trunc), "a plate"])
    assert "cn4.tsv.gz: truncated or corrupt gzip file" in err
    empty = tmp_path / "x.tsv"
    empty.write_text("head\trelation\ttail\nonly two\nfields here\n")
    err = cli_error(capsys, ["graph", "info", str(empty)])
    assert "x.tsv: no edges loaded (3 lines: 1 header, 2 malformed (columns: 2)" in err
    err = cli_error(capsys, ["link", "--graph", str(empty), "--graph-format", "tabel", "a plate"])
    assert "unknown graph format 'tabel' (did you mean 'table'?)" in err


def test_cli_graph_info_on_a_damaged_compiled_graph(tmp_path, capsys):
    src = tmp_path / "t.tsv"
    src.write_text("a\tr\tb\n")
    out = tmp_path / "compiled"
    open_graph(src).save(out)
    (out / "graph.json").write_text("{")
    err = cli_error(capsys, ["graph", "info", str(out)])
    assert "graph.json: corrupt or truncated JSON" in err


def test_cli_evaluate_on_bad_data_files(tmp_path, capsys, monkeypatch):
    from kgfuse.tasks.inference import KGFusePredictor

    # the data file is what is under test: no model is loaded
    monkeypatch.setattr(KGFusePredictor, "from_pretrained", classmethod(lambda cls, *a, **k: object()))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(mc_line(1) + mc_line(2, "caf\xe9?").replace(b"\\u00e9", b"\xe9"))
    err = cli_error(capsys, ["evaluate", "--model", str(tmp_path), "--data", str(bad)])
    assert "bad.jsonl, line 2: not valid UTF-8" in err
    err = cli_error(capsys, ["evaluate", "--model", str(tmp_path), "--data", str(bad), "--format", "cqsa"])
    assert "unknown data format 'cqsa' (did you mean 'csqa'?)" in err
    trunc = truncated_gzip(tmp_path / "dev.jsonl.gz", b"".join(mc_line(i) for i in range(2000)))
    err = cli_error(capsys, ["evaluate", "--model", str(tmp_path), "--data", str(trunc)])
    assert "dev.jsonl.gz: truncated or corrupt gzip file (after line" in err
