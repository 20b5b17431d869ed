"""How long 005010X279A1 validation of a 271 takes: the fast pre-check, and the pyx12 walk.

Run from the project root:  .venv/bin/python benchmarks/bench_validate.py [--rounds N]

Measured in the same run over the same 271s (the x12_fixtures scenarios and the 5010 271s of
../shared/corpus), so the ratios hold even on a busy machine:

* fast path      fastcheck.definitely_clean: the compiled tables, plain Python (clean 271s only:
                 for any other the answer is "no" and the walk runs)
* validate_x12   what the service calls: the fast path, then the walk when it says "no"
* in memory      the pyx12 walk (validate._validate_slow): maps parsed once per process
* reload         the walk with the map cache emptied before each document: plus parsing the map
                 XML, pyx12's code lists and data element dictionary again
* pyx12 default  pyx12.x12n_document with our maps in a map_path folder: pyx12's own driver,
                 which loads its control map, our map, codes and dictionary for every document
                 (it does not split EB03 repetitions, so it finds more errors in the same walk)

Each way runs ``--rounds`` times over all documents; the best round is reported (least noise),
as milliseconds per 271.  The target is 2 ms of added CPU for a typical 271 (validate_x12), and
well under 0.2 ms for the fast path on a fixture 271.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyx12.map_index  # noqa: E402
import pyx12.params  # noqa: E402
import pyx12.x12n_document  # noqa: E402

from eligibility_svc.errors import X12Error  # noqa: E402
from eligibility_svc.x12.fastcheck import definitely_clean  # noqa: E402
from eligibility_svc.x12.validate import MAP_DIR, _validate_slow, load_map, map_file_for, validate_x12  # noqa: E402

FIXTURES = ROOT / "x12_fixtures" / "scenarios"
CORPUS = ROOT.parent / "shared" / "corpus" / "271"


def documents() -> dict[str, bytes]:
    """The 271s to time: every fixture, and every corpus 271 the validator accepts as 5010."""
    found = {f"fixture/{p.parent.name}": p.read_bytes() for p in sorted(FIXTURES.glob("*/271.x12"))}
    for path in sorted(CORPUS.glob("*")):
        try:
            validate_x12(path.read_bytes())
        except X12Error:
            continue  # 4010: refused before any walk
        found[f"corpus/{path.name}"] = path.read_bytes()
    return found


def map_path_folder(folder: Path) -> Path:
    """A pyx12 map_path: our maps and index next to pyx12's control map and dictionaries."""
    package = Path(pyx12.map_index.__file__).parent / "map"
    for name in ("x12.control.00501.xml", "codes.xml", "dataele.xml"):
        shutil.copy(package / name, folder / name)
    for path in MAP_DIR.glob("*.xml"):
        shutil.copy(path, folder / path.name)
    return folder


def best_ms_per_document(run: Callable[[bytes], object], docs: list[bytes], rounds: int) -> float:
    """The fastest round's mean time per document, in milliseconds."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for doc in docs:
            run(doc)
        best = min(best, (time.perf_counter() - start) / len(docs))
    return best * 1000


def in_memory(doc: bytes) -> object:
    return _validate_slow(doc)


def reloading(doc: bytes) -> object:
    load_map.cache_clear()
    return _validate_slow(doc)


def fast_path(doc: bytes) -> object:
    return definitely_clean(doc.decode("utf-8", errors="replace"))


def service_path(doc: bytes) -> object:
    return validate_x12(doc)


def fast_versus_walk(docs: dict[str, bytes], rounds: int) -> None:
    """The clean fixture 271s three ways, interleaved so the three see the same machine load."""
    clean = [doc for name, doc in docs.items() if name.startswith("fixture/") and definitely_clean(doc.decode())]
    fast = walk = service = float("inf")
    for _ in range(rounds):
        fast = min(fast, best_ms_per_document(fast_path, clean, 1))
        service = min(service, best_ms_per_document(service_path, clean, 1))
        walk = min(walk, best_ms_per_document(in_memory, clean, 1))
    print(f"{len(clean)} of {sum(1 for n in docs if n.startswith('fixture/'))} fixture 271s pass the fast path:")
    verdict = "met" if fast < 0.2 else "MISSED"
    print(f"  fast path (definitely_clean)          {fast:7.3f} ms per 271   target < 0.2 ms: {verdict}")
    print(f"  validate_x12 (fast path, no walk)     {service:7.3f} ms per 271")
    print(f"  pyx12 walk (_validate_slow)           {walk:7.3f} ms per 271   x{walk / fast:.1f} the fast path")


def pyx12_default(folder: Path, files: list[Path]) -> Callable[[bytes], object]:
    params = pyx12.params.ParamsBase()
    by_content = {path.read_bytes(): str(path) for path in files}

    def run(doc: bytes) -> object:
        return pyx12.x12n_document.x12n_document(params, by_content[doc], None, None, map_path=str(folder))

    return run


def per_document(docs: dict[str, bytes], rounds: int) -> list[tuple[str, int, float]]:
    """Each document's time through validate_x12, with its segment count."""
    rows = []
    for name, doc in docs.items():
        segments = doc.count(b"~") or doc.count(b"\n")
        rows.append((name, segments, best_ms_per_document(service_path, [doc], rounds)))
    return rows


def _walks(run: Callable[[bytes], object], doc: bytes) -> bool:
    try:
        run(doc)
    except Exception:  # a BOM, a GS01 or ISA12 it has no map for ...: pyx12 raises all sorts
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    docs = documents()
    load_map(map_file_for("271"))  # warm: the service pays this once at start
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "maps"
        folder.mkdir()
        map_path_folder(folder)
        files = []
        for index, doc in enumerate(docs.values()):
            path = Path(tmp) / f"{index}.271"
            path.write_bytes(doc)
            files.append(path)
        stock_run = pyx12_default(folder, files)
        # pyx12's own driver stops at a GS01 or envelope it has no map for (HC, XX, 00401 ...):
        # all three ways are timed on the documents it can walk.
        common = [doc for doc in docs.values() if _walks(stock_run, doc)]
        memory = best_ms_per_document(in_memory, common, args.rounds)
        reload = best_ms_per_document(reloading, common, max(3, args.rounds // 4))
        stock = best_ms_per_document(stock_run, common, max(3, args.rounds // 4))
        load_map(map_file_for("271"))

    rows = per_document(docs, args.rounds)
    typical = statistics.median(ms for _, _, ms in rows)
    print(f"{len(docs)} 271s ({sum(1 for n in docs if n.startswith('fixture/'))} fixtures, the rest corpus)")
    print(f"{len(common)} of them walked by all three ways:")
    print(f"  maps in memory (pyx12 walk)           {memory:7.2f} ms per 271")
    print(f"  maps reloaded per 271 (pyx12 walk)    {reload:7.2f} ms per 271   x{reload / memory:.1f}")
    print(f"  pyx12 default (x12n_document)         {stock:7.2f} ms per 271   x{stock / memory:.1f}")
    print("all of them, validate_x12 (fast path first, the walk when it says no):")
    verdict = "met" if typical <= 2 else "MISSED"
    print(f"  typical 271 (median)                  {typical:7.2f} ms   target <= 2 ms: {verdict}")
    largest = max(rows, key=lambda row: row[1])
    print(f"  largest ({largest[1]} segments, {largest[0]})  {largest[2]:7.2f} ms")
    fast_versus_walk(docs, args.rounds)


if __name__ == "__main__":
    main()
