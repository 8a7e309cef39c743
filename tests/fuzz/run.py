"""A bounded fuzz campaign for one target, or all: python -m tests.fuzz.run TARGET SECONDS.

Uses atheris (coverage-guided libFuzzer, the `fuzz` extra) when it imports, else a plain
mutation loop over the seeds. Prints one line per target (inputs, crashes, hangs) and exits
1 when a target crashed or hung; the input that did it is kept under WORK/TARGET/ (default
WORK: .fuzz/). An input running longer than --input-timeout seconds is a hang.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import re
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from tests.fuzz.seeds import SEEDS, write_corpus

ROOT = Path(__file__).resolve().parents[2]
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 63)


@dataclass
class Campaign:
    target: str
    engine: str
    inputs: int = 0
    crashes: int = 0
    hangs: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"fuzz {self.target}: {self.inputs} inputs in {self.seconds:.0f}s ({self.engine}), "
            f"{self.crashes} crashes, {self.hangs} hangs"
        )


def with_atheris(target: str, seconds: int, work: Path, input_timeout: int) -> Campaign:
    corpus = work / "corpus"
    args = [
        sys.executable,
        "-m",
        "tests.fuzz.atheris_main",
        target,
        str(corpus),
        f"-max_total_time={seconds}",
        f"-timeout={input_timeout}",
        "-rss_limit_mb=2048",
        "-max_len=262144",
        f"-artifact_prefix={work}/",
        "-print_final_stats=1",
    ]
    start = time.monotonic()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    campaign = Campaign(target, "atheris", seconds=time.monotonic() - start)
    found = re.search(r"stat::number_of_executed_units:\s*(\d+)", done.stderr)
    campaign.inputs = int(found.group(1)) if found else 0
    campaign.crashes = len(list(work.glob("crash-*"))) + len(list(work.glob("oom-*")))
    campaign.hangs = len(list(work.glob("timeout-*")))
    if done.returncode != 0 and not (campaign.crashes or campaign.hangs):
        campaign.crashes = 1  # libFuzzer itself failed: show why
    if campaign.crashes or campaign.hangs:
        sys.stderr.write(done.stderr[-4000:])
    return campaign


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hang


def mutate(data: bytes, pool: list[bytes], rng: random.Random) -> bytes:
    """One to four random edits: bit flips, bytes set or inserted or deleted, a range
    repeated, an interesting integer written, a splice with another seed."""
    out = bytearray(data or b"\0")
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(out)) if out else 0
        choice = rng.randrange(7)
        if choice == 0 and out:
            out[pos] ^= 1 << rng.randrange(8)
        elif choice == 1 and out:
            out[pos] = rng.randrange(256)
        elif choice == 2:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif choice == 3 and len(out) > 1:
            del out[pos : pos + rng.randint(1, min(64, len(out) - pos))]
        elif choice == 4 and out:
            piece = out[pos : pos + rng.randint(1, 64)]
            out[pos:pos] = piece * rng.randint(1, 8)
        elif choice == 5:
            width = rng.choice((1, 2, 4, 8))
            value = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
            out[pos : pos + width] = value.to_bytes(width, rng.choice(("little", "big")))
        else:
            other = rng.choice(pool)
            out = out[:pos] + other[rng.randrange(len(other) + 1) :]
    return bytes(out[:262144])


def with_mutations(target: str, seconds: int, work: Path, input_timeout: int) -> Campaign:
    from tests.fuzz.targets import EXPECTED, TARGETS

    run = TARGETS[target]
    pool = [p.read_bytes() for p in sorted((work / "corpus").iterdir())]
    rng = random.Random(0x15)
    campaign = Campaign(target, "mutation loop")
    start = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)
    while time.monotonic() - start < seconds:
        data = mutate(rng.choice(pool), pool, rng)
        campaign.inputs += 1
        signal.setitimer(signal.ITIMER_REAL, input_timeout)
        try:
            run(data)
        except EXPECTED:
            pass
        except _Hang:
            campaign.hangs += 1
            _keep(work, "timeout", data, "")
        except Exception:
            campaign.crashes += 1
            _keep(work, "crash", data, traceback.format_exc())
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    campaign.seconds = time.monotonic() - start
    return campaign


def _keep(work: Path, kind: str, data: bytes, text: str) -> None:
    name = f"{kind}-{len(list(work.glob(kind + '-*'))):04}"
    (work / name).write_bytes(data)
    if text:
        sys.stderr.write(f"{work / name}:\n{text}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=[*SEEDS, "all"])
    parser.add_argument("seconds", type=int)
    parser.add_argument("--work", type=Path, default=ROOT / ".fuzz")
    parser.add_argument("--input-timeout", type=int, default=10)
    parser.add_argument("--engine", choices=("auto", "atheris", "mutation"), default="auto")
    args = parser.parse_args(argv)
    have_atheris = importlib.util.find_spec("atheris") is not None
    use_atheris = args.engine == "atheris" or (args.engine == "auto" and have_atheris)
    failed = False
    for target in SEEDS if args.target == "all" else [args.target]:
        work = args.work / target
        for old in [*work.glob("crash-*"), *work.glob("timeout-*"), *work.glob("oom-*")]:
            old.unlink()
        write_corpus(target, work / "corpus")
        fuzz = with_atheris if use_atheris else with_mutations
        campaign = fuzz(target, args.seconds, work, args.input_timeout)
        print(campaign.line(), flush=True)
        failed = failed or bool(campaign.crashes or campaign.hangs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
