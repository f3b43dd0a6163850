"""The names of the start-path list (runtime-cli/start-path.order), made the
same way where the list is written (scripts/order-start-path.sh) and where a
build is checked against it (benches/startup.sh).

Rust names lose their hashes (legacy `17h<hex>E`, v0 crate disambiguators
and the back-references whose byte offsets move with them) and LTO's `.<n>`
suffix, as `*`: the list then holds whatever hashes a build gives them
(runtime-cli/build_order.rs). A v0 name of code a crate instantiated from
another's (a generic or inline function) ends in the instantiating crate,
which moves when newer dependency versions inline differently: that crate
goes too, so the pattern names the function in whichever crate holds it
(each copy is placed). Where a pattern would match other functions too
(legacy generic instances differ by the hash alone), the list keeps the
exact name.

`python3 start_path_names.py LIST BINARY` prints how many of LIST's names
BINARY's symbols match, then how many it lists; it fails if BINARY has no
symbols.
"""
import re
import subprocess
import sys


def without_crate(p):
    """P without the instantiating crate that ends it, if one does."""
    m = re.search(r"(?:Cs\*_(\d+)([0-9A-Za-z_]+)|B\*_)\*$", p)
    if m and (m.group(1) is None or len(m.group(2)) == int(m.group(1))):
        return p[:m.start()] + "*"
    return p


def pattern(name):
    """The hash-free pattern of Rust symbol NAME; None for other names."""
    base = re.sub(r"\.\d+$", "", name)
    if re.match(r"_ZN.*17h[0-9a-f]{16}E$", base):
        return base[:-17] + "*E*"
    if base.startswith("_R"):
        hashless = re.sub(r"B[0-9A-Za-z]*_", "B*_", re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", base))
        return without_crate(hashless + "*")
    return None


def defined_symbols(binary):
    """BINARY's defined symbols, by `nm`."""
    out = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True).stdout
    return [p[2] for p in (line.split() for line in out.splitlines()) if len(p) == 3]


def main(listing, binary):
    names = open(listing).read().split()
    symbols = defined_symbols(binary)
    if not symbols:
        sys.exit(f"{binary}: no symbols")
    have = set()
    for s in symbols:
        have.add(s)
        have.add(pattern(s))
    print(sum(n in have for n in names), len(names))


if __name__ == "__main__":
    main(*sys.argv[1:3])
