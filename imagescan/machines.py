"""The one table of facts that vary by architecture (issue 8): adding one is one row.

Every module that needs an e_machine number, an OCI architecture name, a loader's file name,
`$PLATFORM`, a relocation type or the glibc-hwcaps levels reads them from `MACHINES`.
Sources: the ELF psABI of each architecture (relocation numbers), glibc's
sysdeps/*/dl-hwcaps-subdirs.c (`_dl_hwcaps_subdirs`, most preferred first), its
sysdeps/unix/sysv/linux/*/ldconfig.h (loader names), musl's arch/*/reloc.h (`LDSO_ARCH`),
and the OCI image spec's GOARCH spellings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

EM_386, EM_PPC, EM_PPC64, EM_S390, EM_ARM = 3, 20, 21, 22, 40
EM_X86_64, EM_AARCH64, EM_RISCV, EM_LOONGARCH = 62, 183, 243, 258


@dataclass(frozen=True, slots=True)
class Machine:
    """One architecture as the loaders and the image formats name it.

    `platform` is what the kernel passes as AT_PLATFORM (`$PLATFORM`) on a baseline CPU;
    `fallback_multiarch` the Debian triplet directory taken as the compiled-in search
    defaults when the image's ld.so cannot be read (None: upstream's /lib:/usr/lib);
    `hwcaps` the glibc-hwcaps subdirectory names, most preferred first, and
    `baseline_levels` the CPU-level names that select none of them.
    """

    name: str  # uname -m, and how reports name it
    e_machine: int
    elf_class: int  # 32 or 64
    little_endian: bool
    oci_arch: str | None
    oci_variant: str | None
    glibc_loaders: tuple[str, ...]
    musl_arch: str | None
    platform: str | None
    jump_slot: int  # R_<arch>_JUMP_SLOT: PLT slots bound lazily (elf_machine_lazy_rel)
    copy: int  # R_<arch>_COPY: an executable's copy of a library's data object
    fallback_multiarch: str | None = None
    hwcaps: tuple[str, ...] = ()
    baseline_levels: tuple[str, ...] = ("", "baseline")
    uname_aliases: tuple[str, ...] = ()
    # Other rows whose programs this one's kernel and CPU run natively, each with its own
    # loader from the image (an x86-64 kernel runs i386 and, where enabled, x32 programs).
    runs: tuple[str, ...] = ()


_X86_64_LEVELS = ("x86-64-v4", "x86-64-v3", "x86-64-v2")

MACHINES: tuple[Machine, ...] = (
    Machine(
        "x86_64", EM_X86_64, 64, True, "amd64", None,
        ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-x86-64.so.2"), "x86_64", "x86_64",
        7, 5, "x86_64-linux-gnu", _X86_64_LEVELS,
        ("", "baseline", "v1", "x86-64", "x86-64-v1"), ("amd64",), ("i386", "x32"),
    ),
    Machine(
        "x32", EM_X86_64, 32, True, None, None,
        ("/libx32/ld-linux-x32.so.2",), "x32", "x86_64",
        7, 5, None, _X86_64_LEVELS,
        ("", "baseline", "v1", "x86-64", "x86-64-v1"),
    ),
    Machine(
        "i386", EM_386, 32, True, "386", None,
        ("/lib/ld-linux.so.2",), "i386", "i686", 7, 5, None,
        uname_aliases=("i686",),
    ),
    Machine(
        "aarch64", EM_AARCH64, 64, True, "arm64", "v8",
        ("/lib/ld-linux-aarch64.so.1",), "aarch64", "aarch64", 1026, 1024, "aarch64-linux-gnu",
        uname_aliases=("arm64",),
    ),
    Machine(
        "arm", EM_ARM, 32, True, "arm", "v7",
        ("/lib/ld-linux-armhf.so.3", "/lib/ld-linux.so.3"), "armhf", "v7l",
        22, 20, None, uname_aliases=("armv7l",),
    ),
    Machine(
        "ppc64le", EM_PPC64, 64, True, "ppc64le", None,
        ("/lib64/ld64.so.2",), "powerpc64le", None, 21, 19, None,
        ("power10", "power9"), ("", "baseline", "power8"),
    ),
    Machine(
        "ppc64", EM_PPC64, 64, False, "ppc64", None,
        ("/lib64/ld64.so.1",), "powerpc64", None, 21, 19, None,
    ),
    Machine(
        "ppc", EM_PPC, 32, False, "ppc", None,
        ("/lib/ld.so.1",), "powerpc", None, 21, 19, None,
    ),
    Machine(
        "s390x", EM_S390, 64, False, "s390x", None,
        ("/lib/ld64.so.1",), "s390x", None, 11, 9, None,
        ("z17", "z16", "z15", "z14", "z13"), ("", "baseline", "z196", "zEC12"),
    ),
    Machine(
        "riscv64", EM_RISCV, 64, True, "riscv64", None,
        ("/lib/ld-linux-riscv64-lp64d.so.1",), "riscv64", None, 5, 4, None,
    ),
    Machine(
        "loongarch64", EM_LOONGARCH, 64, True, "loong64", None,
        ("/lib64/ld-linux-loongarch-lp64d.so.1",), "loongarch64", None, 5, 4,
        None,
    ),
)  # fmt: skip

DEFAULT = MACHINES[0]


def by_oci(arch: str, variant: str | None = None) -> Machine | None:
    """The row of an OCI `architecture` (and variant, when rows differ by it)."""
    rows = [m for m in MACHINES if m.oci_arch == arch]
    exact = [m for m in rows if variant is not None and m.oci_variant == variant]
    return _first(exact or rows)


def by_elf(e_machine: int, elf_class: int, little_endian: bool | None = None) -> Machine | None:
    """The row of an ELF header's e_machine and class (and byte order, where it differs)."""
    rows = [m for m in MACHINES if m.e_machine == e_machine and m.elf_class == elf_class]
    exact = [m for m in rows if little_endian is None or m.little_endian == little_endian]
    return _first(exact or rows)


def _first(rows: list[Machine]) -> Machine | None:
    return rows[0] if rows else None


def by_uname(name: str) -> Machine | None:
    """The row `uname -m` (or `platform.machine()`) names."""
    return next((m for m in MACHINES if name == m.name or name in m.uname_aliases), None)


def machine_name(
    e_machine: int, elf_class: int | None = None, little_endian: bool | None = None
) -> str:
    """How a report names an e_machine (`x86_64`), or the number when no row has it."""
    rows = [m for m in MACHINES if m.e_machine == e_machine]
    for wanted, column in ((elf_class, "elf_class"), (little_endian, "little_endian")):
        rows = [m for m in rows if wanted is None or getattr(m, column) == wanted] or rows
    return rows[0].name if rows else str(e_machine)


def relocation_types(column: str) -> dict[int, int]:
    """e_machine -> one relocation number (`jump_slot` or `copy`), for the ELF reader."""
    return {m.e_machine: getattr(m, column) for m in _unique_e_machines(MACHINES)}


def _unique_e_machines(rows: Iterable[Machine]) -> list[Machine]:
    seen: set[int] = set()
    unique = []
    for row in rows:
        if row.e_machine not in seen:
            seen.add(row.e_machine)
            unique.append(row)
    return unique


@dataclass(frozen=True, slots=True)
class CpuModel:
    """A CPU as glibc's loader sees it: the best glibc-hwcaps level it supports, the
    AT_PLATFORM glibc settles on (sysdeps/x86/cpu-features.c overrides it to "haswell" or
    "xeon_phi" on Intel CPUs only), and the legacy HWCAP_IMPORTANT names (glibc <= 2.36;
    "avx512_1" is set on Intel CPUs with AVX512F/CD/BW/DQ/VL only)."""

    name: str
    machine: str  # Machine.name
    level: str  # "" for the baseline
    platform: str | None
    legacy_hwcaps: tuple[str, ...]
    description: str
    aliases: tuple[str, ...] = ()


CPU_MODELS: tuple[CpuModel, ...] = (
    CpuModel("x86-64", "x86_64", "", "x86_64", ("x86_64",), "any x86-64 CPU (the baseline)",
             ("baseline", "v1", "x86-64-v1")),
    CpuModel("x86-64-v2", "x86_64", "x86-64-v2", "x86_64", ("x86_64",),
             "SSE4.2/POPCNT, non-Intel or pre-Haswell Intel", ("v2",)),
    CpuModel("x86-64-v3", "x86_64", "x86-64-v3", "x86_64", ("x86_64",),
             "AVX2 on a non-Intel CPU (AMD Zen 1-3)", ("v3", "zen2", "zen3")),
    CpuModel("x86-64-v4", "x86_64", "x86-64-v4", "x86_64", ("x86_64",),
             "AVX-512 on a non-Intel CPU (AMD Zen 4 and later)", ("v4", "zen4", "zen5")),
    CpuModel("haswell", "x86_64", "x86-64-v3", "haswell", ("x86_64",),
             "Intel with AVX2, without AVX-512 (Haswell to Alder Lake)"),
    CpuModel("skylake-avx512", "x86_64", "x86-64-v4", "haswell", ("x86_64", "avx512_1"),
             "Intel with AVX-512 (Skylake-SP, Ice Lake-SP, Sapphire Rapids)",
             ("icelake-server", "sapphirerapids")),
    CpuModel("xeon_phi", "x86_64", "x86-64-v3", "xeon_phi", ("x86_64",),
             "Intel Xeon Phi (Knights Landing)", ("knl",)),
    CpuModel("armv8-a", "aarch64", "", "aarch64", (), "any AArch64 CPU", ("baseline",)),
    CpuModel("power8", "ppc64le", "", "power8", (), "POWER8 (the ppc64le baseline)",
             ("baseline",)),
    CpuModel("power9", "ppc64le", "power9", "power9", (), "POWER9"),
    CpuModel("power10", "ppc64le", "power10", "power10", (), "POWER10"),
    CpuModel("z196", "s390x", "", None, (), "the s390x baseline", ("baseline", "zEC12")),
    CpuModel("z13", "s390x", "z13", "z13", (), "IBM z13"),
    CpuModel("z14", "s390x", "z14", "z14", (), "IBM z14"),
    CpuModel("z15", "s390x", "z15", "z15", (), "IBM z15"),
    CpuModel("z16", "s390x", "z16", "z16", (), "IBM z16"),
    CpuModel("z17", "s390x", "z17", "z17", (), "IBM z17"),
)  # fmt: skip


def cpu_models(machine: str) -> tuple[CpuModel, ...]:
    """The CPU models of one architecture (Machine.name), baseline first."""
    return tuple(m for m in CPU_MODELS if m.machine == machine)


def baseline_cpu(machine: Machine) -> CpuModel:
    """The CPU a verdict is for when none is named: the architecture's baseline (a row of
    its own for architectures without models)."""
    models = cpu_models(machine.name)
    if models:
        return models[0]
    return CpuModel("baseline", machine.name, "", machine.platform, (), "baseline")


def find_cpu(machine: Machine, name: str) -> CpuModel | None:
    """The model `name` (or an alias) of `machine`, or None."""
    wanted = name.strip().lower()
    for model in cpu_models(machine.name):
        if wanted == model.name.lower() or wanted in (a.lower() for a in model.aliases):
            return model
    return None
