"""Parse + interpret speed, in µs per segment, against two baselines timed in the same run.

    .venv/bin/python benchmarks/bench_parse.py [--core compiled|pure] [--rounds 7] [--min-seconds 0.3]

``--core compiled`` (the default, as the image runs) measures a mypyc build of the X12 core
(``build_support/compiled_tree.py``, built on first use); ``--core pure`` the Python source.

Files: every scenario 271 in x12_fixtures/ and every 5010 271 in ../shared/corpus.
Baselines, on the same bytes:
  * bare split: ``[s.split(elem) for s in text.split(term)]`` — the floor for any tokenizer;
  * pyx12 ``X12Reader``: pyx12's raw segment reader (it only tokenizes), on the files it accepts
    (it needs an exactly-106-character ISA and no byte-order mark).
Targets (issue 2): ours within 5× of the bare split, and at least 4× faster than pyx12's reader.
Each figure is the best of ``--rounds`` rounds; a round repeats the work for ``--min-seconds``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eligibility_svc.errors import X12UnsupportedVersion
from eligibility_svc.models import EligibilityRequest
from eligibility_svc.x12.interpret import summarize
from eligibility_svc.x12.parse271 import parse_271
from eligibility_svc.x12.reader import decode, detect_delimiters, read_elements, read_interchange

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after the compiled tree, when PYTHONPATH puts one first

from benchmarks.local_procs import CORES, rerun_on_core  # noqa: E402
from eligibility_svc.core_build import core_kind  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "271"
SCENARIOS = ROOT / "x12_fixtures" / "scenarios"


@dataclass
class Sample:
    name: str
    text: str
    segments: int
    request: EligibilityRequest | None


def load_samples() -> list[Sample]:
    """Fixture 271s (with their requests) and the 5010 corpus 271s."""
    samples = [_sample(p / "271.x12", _scenario_request(p)) for p in sorted(SCENARIOS.iterdir()) if p.is_dir()]
    for path in sorted(CORPUS.iterdir()):
        try:
            parse_271(path.read_bytes())
        except X12UnsupportedVersion:
            continue
        samples.append(_sample(path, None))
    return samples


def _scenario_request(folder: Path) -> EligibilityRequest:
    return EligibilityRequest.model_validate(json.loads((folder / "scenario.json").read_text())["request"])


def _sample(path: Path, request: EligibilityRequest | None) -> Sample:
    text = decode(path.read_bytes())
    count = sum(len(t.segments) for t in read_interchange(text).transactions) + 4
    return Sample(path.parent.name if request else path.name, text, count, request)


def bare_split(sample: Sample) -> Callable[[], object]:
    delimiters, _ = detect_delimiters(sample.text)
    text, term, elem = sample.text, delimiters.segment, delimiters.element
    return lambda: [s.split(elem) for s in text.split(term)]


def ours(sample: Sample) -> Callable[[], object]:
    text, request = sample.text, sample.request
    return lambda: [summarize(tx, request) for tx in parse_271(text)]


def read_only(sample: Sample) -> Callable[[], object]:
    """Breakdown: the reader's part (delimiters, element lists, envelopes)."""
    text = sample.text
    return lambda: read_elements(text)


def parse_only(sample: Sample) -> Callable[[], object]:
    """Breakdown: reader and 271 parser (``parse_271``)."""
    text = sample.text
    return lambda: parse_271(text)


def interpret_only(sample: Sample) -> Callable[[], object]:
    """Breakdown: interpretation of transactions parsed beforehand (``summarize``)."""
    transactions, request = parse_271(sample.text), sample.request
    return lambda: [summarize(tx, request) for tx in transactions]


def pyx12_reader(sample: Sample) -> Callable[[], object] | None:
    """pyx12's raw reader, or None when it refuses the file (BOM, ISA not 106 characters ...)."""
    import pyx12.x12file

    text = sample.text
    try:
        list(pyx12.x12file.X12Reader(io.StringIO(text)))
    except Exception:  # pyx12 raises several unrelated types; a refusal just excludes the file
        return None
    return lambda: list(pyx12.x12file.X12Reader(io.StringIO(text)))


def best_seconds(work: Callable[[], object], rounds: int, min_seconds: float) -> float:
    """Best per-call time over ``rounds`` rounds of at least ``min_seconds`` each."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            work()
        if time.perf_counter() - start >= min_seconds / 10:
            break
        calls *= 2
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < min_seconds:
            for _ in range(calls):
                work()
            n += calls
        best = min(best, (time.perf_counter() - start) / n)
    return best


def measure(
    samples: list[Sample], make: Callable[[Sample], Callable[[], object] | None], args: argparse.Namespace
) -> float:
    """µs per segment over ``samples``: total best time / total segments."""
    seconds = segments = 0.0
    for sample in samples:
        work = make(sample)
        assert work is not None
        seconds += best_seconds(work, args.rounds, args.min_seconds)
        segments += sample.segments
    return seconds / segments * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=0.05)
    parser.add_argument("--core", choices=CORES, default="compiled", help="X12 core to measure (default: compiled)")
    args = parser.parse_args()
    rerun_on_core(args.core)
    print(f"X12 core: {core_kind()}")
    samples = load_samples()
    accepted = [s for s in samples if pyx12_reader(s) is not None]
    print(f"{len(samples)} files, {sum(s.segments for s in samples)} segments; pyx12 reads {len(accepted)} of them")
    split_all, ours_all = measure(samples, bare_split, args), measure(samples, ours, args)
    split_px, ours_px = measure(accepted, bare_split, args), measure(accepted, ours, args)
    pyx12_px = measure(accepted, pyx12_reader, args)
    print(f"all files       bare split {split_all:6.2f} µs/seg   parse+interpret {ours_all:6.2f} µs/seg")
    print(
        f"pyx12's files   bare split {split_px:6.2f} µs/seg   parse+interpret {ours_px:6.2f} µs/seg   "
        f"pyx12 X12Reader {pyx12_px:6.2f} µs/seg"
    )
    read_all, parse_all, interpret_all = (
        measure(samples, make, args) for make in (read_only, parse_only, interpret_only)
    )
    print(
        f"breakdown       read {read_all:6.2f} µs/seg   parse_271 (read included) {parse_all:6.2f} µs/seg   "
        f"interpret {interpret_all:6.2f} µs/seg"
    )
    print(f"ratio parse+interpret / bare split: {ours_all / split_all:5.2f}x  (target <= 5)")
    print(f"ratio pyx12 reader / parse+interpret: {pyx12_px / ours_px:5.2f}x  (target >= 4)")


if __name__ == "__main__":
    main()
