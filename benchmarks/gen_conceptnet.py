"""Generate a synthetic ConceptNet 5 assertions file at full English scale.

The output follows the official format line for line (5 tab-separated columns: assertion
URI, relation URI, start URI, end URI, JSON info with ``"weight"``), with:

- about 800,000 English concepts (single words and multi-word phrases, some with sense
  suffixes such as ``/n``, ``/v/wn/body`` or ``/n/wikt/en_1`` as in the real dump),
- about 2.1 million English-English rows over ConceptNet's relations in roughly the real
  proportions (RelatedTo first; FormOf, DerivedFrom, ... which the 17-relation merge drops),
  giving about 1.7 million merged edges, 3.4 million with inverses,
- heavy-tailed (Zipf-like) degrees: concept ``k`` in popularity order is an edge end with
  probability proportional to ``(k + 10) ** -1.1``; every concept appears at least once,
- non-English and cross-language rows (``/c/fr/...``, ``/c/ja/...``, ``/c/en/x -> /c/de/y``)
  making up about 88% of all rows, as in the real ``conceptnet-assertions-5.7.0.csv``,
  interleaved with the English rows.

Deterministic given ``--seed``. Usage (defaults shown)::

    python benchmarks/gen_conceptnet.py benchmarks/_work/assertions.csv \\
        --concepts 800000 --english-rows 2100000 --non-english-fraction 0.88 --seed 0 \\
        [--vocab-file words.txt] [--gzip]

``--vocab-file``: extra words/phrases (one per line, spaces or underscores) that must be
concepts of the generated graph; they are placed among the most frequent concepts.
``--scale 0.01`` shrinks concepts and rows proportionally (quick runs).
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import numpy as np

# (relation, share of English rows, dataset kind); shares loosely follow ConceptNet 5.7.
RELATIONS = [
    ("RelatedTo", 0.46, "verbosity"),
    ("FormOf", 0.09, "wiktionary"),
    ("DerivedFrom", 0.06, "wiktionary"),
    ("HasContext", 0.06, "wiktionary"),
    ("IsA", 0.07, "wordnet"),
    ("Synonym", 0.06, "wordnet"),
    ("EtymologicallyRelatedTo", 0.01, "wiktionary"),
    ("AtLocation", 0.015, "omcs"),
    ("UsedFor", 0.02, "omcs"),
    ("CapableOf", 0.012, "omcs"),
    ("HasProperty", 0.01, "omcs"),
    ("HasSubevent", 0.012, "omcs"),
    ("HasPrerequisite", 0.012, "omcs"),
    ("Antonym", 0.01, "wiktionary"),
    ("DistinctFrom", 0.002, "wiktionary"),
    ("PartOf", 0.006, "wordnet"),
    ("HasA", 0.003, "omcs"),
    ("Causes", 0.008, "omcs"),
    ("CausesDesire", 0.002, "omcs"),
    ("MotivatedByGoal", 0.005, "omcs"),
    ("Desires", 0.002, "omcs"),
    ("NotDesires", 0.002, "omcs"),
    ("NotCapableOf", 0.001, "omcs"),
    ("ReceivesAction", 0.003, "omcs"),
    ("CreatedBy", 0.0005, "omcs"),
    ("MadeOf", 0.001, "omcs"),
    ("DefinedAs", 0.001, "omcs"),
    ("InstanceOf", 0.002, "wordnet"),
    ("MannerOf", 0.007, "wordnet"),
    ("Entails", 0.001, "wordnet"),
    ("HasFirstSubevent", 0.002, "omcs"),
    ("HasLastSubevent", 0.002, "omcs"),
    ("LocatedNear", 0.001, "omcs"),
    ("SimilarTo", 0.003, "wordnet"),
    ("SymbolOf", 0.0005, "omcs"),
    ("dbpedia/genre", 0.001, "dbpedia"),
]

UNMERGED = ("FormOf", "DerivedFrom", "EtymologicallyRelatedTo", "SymbolOf", "dbpedia/genre")

INFO = {
    "omcs": ('{"dataset": "/d/conceptnet/4/en", "license": "cc:by/4.0", "sources": [{"activity": '
             '"/s/activity/omcs/omcs1_possibly_free_text", "contributor": "/s/contributor/omcs/user%d"}], '
             '"surfaceEnd": "%s", "surfaceStart": "%s", "surfaceText": "[[%s]] is related to [[%s]]", "weight": %s}'),
    "verbosity": ('{"dataset": "/d/verbosity", "license": "cc:by/4.0", "sources": [{"contributor": '
                  '"/s/resource/verbosity"}], "surfaceEnd": "%s", "surfaceStart": "%s", "surfaceText": '
                  '"[[%s]] is related to [[%s]]", "weight": %s}'),
    "wordnet": ('{"dataset": "/d/wordnet/3.1", "license": "cc:by/4.0", "sources": [{"contributor": '
                '"/s/resource/wordnet/rdf/3.1"}], "weight": %s}'),
    "wiktionary": ('{"dataset": "/d/wiktionary/en", "license": "cc:by-sa/4.0", "sources": [{"contributor": '
                   '"/s/resource/wiktionary/en", "process": "/s/process/wikiparsec/2"}], "weight": %s}'),
    "dbpedia": ('{"dataset": "/d/dbpedia/en", "license": "cc:by-sa/4.0", "sources": [{"contributor": '
                '"/s/resource/dbpedia/2015/en"}], "weight": %s}'),
}
LANGS = ["fr", "de", "ja", "es", "it", "pt", "zh", "ru", "nl", "fi", "pl", "sv", "la", "ms", "tr", "ca",
         "cs", "hu", "el", "ar", "ko", "eo", "grc", "sh"]
SENSES = ["", "", "", "", "", "", "/n", "/v", "/a", "/n/wn/artifact", "/v/wn/body", "/n/wikt/en_1", "/r",
          "/a/wikt/en_2", "/n/wn/food"]
ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "qu", "r", "s", "t", "v", "w", "z",
          "br", "ch", "cl", "cr", "dr", "fl", "gr", "pl", "pr", "sh", "sl", "st", "th", "tr", ""]
NUCLEI = ["a", "e", "i", "o", "u", "ea", "ou", "ai", "oo", "ie", "y"]
CODAS = ["", "", "n", "r", "s", "t", "l", "m", "ng", "ck", "st", "rd", "nd", "x"]


def _syllables(rng: np.random.Generator, n: int) -> np.ndarray:
    syl = np.array([o + v + c for o in ONSETS for v in NUCLEI for c in CODAS])
    return syl[rng.integers(0, syl.size, n)]


def make_words(rng: np.random.Generator, n: int, extra: list[str]) -> list[str]:
    """``n`` unique English-looking terms (ConceptNet spelling: lowercase, underscores)."""
    words: list[str] = []
    seen: set[str] = set()
    for w in extra:
        w = w.strip().lower().replace(" ", "_")
        if w and w not in seen and "\t" not in w and "/" not in w:
            seen.add(w)
            words.append(w)
    while len(words) < n:
        m = int((n - len(words)) * 1.3) + 100
        k = rng.choice([1, 2, 3], size=m, p=[0.25, 0.5, 0.25])
        a, b, c = _syllables(rng, m), _syllables(rng, m), _syllables(rng, m)
        single = np.char.add(a, np.where(k >= 2, b, ""))
        single = np.char.add(single, np.where(k == 3, c, ""))
        phrase = rng.random(m) < 0.35  # multi-word phrases like real ConceptNet ("ice_cream")
        second = np.char.add(_syllables(rng, m), _syllables(rng, m))
        cand = np.where(phrase, np.char.add(np.char.add(single, "_"), second), single)
        for w in cand.tolist():
            if w not in seen:
                seen.add(w)
                words.append(w)
                if len(words) == n:
                    break
    return words


def zipf_ranks(rng: np.random.Generator, n: int, size: int, a: float = 1.1, shift: float = 10.0) -> np.ndarray:
    """Ranks in [0, n) with P(k) ~ (k + shift)^-a (inverse-CDF sampling of the continuous law)."""
    u = rng.random(size)
    lo, hi = shift ** (1 - a), (n + shift) ** (1 - a)
    x = (lo + u * (hi - lo)) ** (1 / (1 - a)) - shift
    return np.minimum(x.astype(np.int64), n - 1)


def generate(out: Path, concepts: int, english_rows: int, non_english_fraction: float, seed: int,
             vocab: list[str], use_gzip: bool, chunk: int = 200_000) -> dict:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    words = make_words(rng, concepts, vocab)
    # popularity order: vocab words first (frequent, like everyday CSQA words), the rest shuffled
    rest = np.arange(len(vocab), concepts)
    rng.shuffle(rest)
    pop = np.concatenate((np.arange(min(len(vocab), concepts)), rest))
    words_arr = np.array(words, dtype=object)[pop]
    senses = np.array(SENSES, dtype=object)

    rel_names = [r for r, _, _ in RELATIONS]
    shares = np.array([s for _, s, _ in RELATIONS])
    shares = shares / shares.sum()
    kinds = [k for _, _, k in RELATIONS]

    # English rows: first every concept once (as head or tail), then Zipf pairs.
    heads = zipf_ranks(rng, concepts, english_rows)
    tails = zipf_ranks(rng, concepts, english_rows)
    cover = rng.permutation(concepts)
    side = rng.random(concepts) < 0.5
    heads[:concepts] = np.where(side, cover, heads[:concepts])
    tails[:concepts] = np.where(side, tails[:concepts], cover)
    clash = heads == tails
    tails[clash] = (tails[clash] + 1) % concepts
    rels = rng.choice(len(rel_names), size=english_rows, p=shares)
    # the covering rows use relations that the 17-relation merge keeps, so the merged graph
    # has every concept too
    dropped = np.isin(rels[:concepts], [rel_names.index(x) for x in UNMERGED])
    rels[:concepts][dropped] = rel_names.index("RelatedTo")
    order = rng.permutation(english_rows)
    heads, tails, rels = heads[order], tails[order], rels[order]
    weights = np.round(rng.choice([1.0, 1.0, 1.0, 2.0, 0.5, 1.5, 3.46, 4.0], size=english_rows)
                       * (1 + (rng.random(english_rows) < 0.02)), 3)

    total_rows = int(round(english_rows / (1 - non_english_fraction)))
    n_other = total_rows - english_rows
    # foreign vocabulary: a pool of terms with accents / other scripts
    base = make_words(np.random.default_rng(seed + 1), 60_000, [])
    accents = ["", "é", "ö", "ñ", "ç", "à", "ü", "ø"]
    foreign = [w + accents[i % len(accents)] for i, w in enumerate(base)] + \
              ["犬", "猫", "動物", "水", "食べ物", "家", "学校", "本", "собака", "кошка", "дом", "вода", "μήλο"]
    foreign_arr = np.array(foreign, dtype=object)
    is_english = np.zeros(total_rows, dtype=bool)
    is_english[rng.choice(total_rows, size=english_rows, replace=False)] = True

    opener = gzip.open if use_gzip else open
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    ei = 0  # next English row
    with opener(tmp, "wt", encoding="utf-8", newline="\n") as f:
        for start in range(0, total_rows, chunk):
            stop = min(start + chunk, total_rows)
            mask = is_english[start:stop]
            ne = int(mask.sum())
            no = (stop - start) - ne
            # English rows of this chunk
            h = words_arr[heads[ei:ei + ne]]
            t = words_arr[tails[ei:ei + ne]]
            r = rels[ei:ei + ne]
            w = weights[ei:ei + ne]
            hs = senses[rng.integers(0, senses.size, ne)]
            ts = senses[rng.integers(0, senses.size, ne)]
            users = rng.integers(0, 20000, ne)
            ei += ne
            # other rows: both ends foreign (mostly) or cross-language
            la = rng.integers(0, len(LANGS), no)
            lb = np.where(rng.random(no) < 0.8, la, rng.integers(0, len(LANGS), no))
            fa = foreign_arr[rng.integers(0, foreign_arr.size, no)]
            fb = foreign_arr[rng.integers(0, foreign_arr.size, no)]
            cross = rng.random(no) < 0.15  # /c/en/x -> /c/<lang>/y
            ow = words_arr[zipf_ranks(rng, concepts, no)]
            orl = rng.integers(0, 6, no)
            lines = []
            e_i = o_i = 0
            for is_en in mask.tolist():
                if is_en:
                    rn = rel_names[r[e_i]]
                    su = f"/c/en/{h[e_i]}{hs[e_i]}"
                    eu = f"/c/en/{t[e_i]}{ts[e_i]}"
                    kind = kinds[r[e_i]]
                    wt = repr(float(w[e_i]))
                    if kind == "omcs":
                        sh, st = h[e_i].replace("_", " "), t[e_i].replace("_", " ")
                        info = INFO[kind] % (users[e_i], st, sh, sh, st, wt)
                    elif kind == "verbosity":
                        sh, st = h[e_i].replace("_", " "), t[e_i].replace("_", " ")
                        info = INFO[kind] % (st, sh, sh, st, wt)
                    else:
                        info = INFO[kind] % wt
                    e_i += 1
                else:
                    rn = ("Synonym", "RelatedTo", "FormOf", "IsA", "DerivedFrom", "ExternalURL")[orl[o_i]]
                    lang_a = LANGS[la[o_i]]
                    su = f"/c/{lang_a}/{fa[o_i]}"
                    if rn == "ExternalURL":
                        eu = f"http://{lang_a}.dbpedia.org/resource/{fb[o_i]}"
                    elif cross[o_i]:
                        su = f"/c/en/{ow[o_i]}"
                        eu = f"/c/{lang_a}/{fb[o_i]}"
                    else:
                        eu = f"/c/{LANGS[lb[o_i]]}/{fb[o_i]}{'/n' if o_i % 3 == 0 else ''}"
                    info = ('{"dataset": "/d/wiktionary/%s", "license": "cc:by-sa/4.0", "sources": [{"contributor": '
                            '"/s/resource/wiktionary/%s", "process": "/s/process/wikiparsec/2"}], "weight": 1.0}'
                            % (lang_a, lang_a))
                    o_i += 1
                lines.append(f"/a/[/r/{rn}/,{su}/,{eu}/]\t/r/{rn}\t{su}\t{eu}\t{info}\n")
            f.write("".join(lines))
    tmp.replace(out)
    return {"path": str(out), "rows": total_rows, "english_rows": english_rows, "concepts": concepts,
            "seconds": round(time.perf_counter() - t0, 1), "bytes": out.stat().st_size}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", default=str(Path(__file__).resolve().parent / "_work" / "assertions.csv"))
    ap.add_argument("--concepts", type=int, default=800_000)
    ap.add_argument("--english-rows", type=int, default=2_100_000)
    ap.add_argument("--non-english-fraction", type=float, default=0.88)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply --concepts and --english-rows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab-file", type=Path, default=None,
                    help="words/phrases (one per line) that must be concepts of the generated graph")
    ap.add_argument("--gzip", action="store_true", help="write gzip (use a .gz file name)")
    args = ap.parse_args(argv)
    vocab: list[str] = []
    if args.vocab_file is not None:
        vocab = [ln for ln in args.vocab_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    concepts = max(int(args.concepts * args.scale), len(vocab) + 10)
    rows = max(int(args.english_rows * args.scale), concepts)
    info = generate(Path(args.out), concepts, rows, args.non_english_fraction, args.seed, vocab, args.gzip)
    print(" ".join(f"{k}={v}" for k, v in info.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
