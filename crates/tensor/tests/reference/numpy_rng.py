"""Print the reference values embedded in `tests/numpy_rng.rs`.

Run with any numpy (values of the legacy `RandomState` are frozen since numpy 1.16):

    python crates/tensor/tests/reference/numpy_rng.py

Long sequences are summarised by a wrapping 64-bit sum of `(index + 1) * value`, where `value`
is the raw integer or the IEEE-754 bit pattern of a float, so one mismatch anywhere changes it.
"""

import numpy as np

MASK64 = (1 << 64) - 1


def checksum_ints(values):
    total = 0
    for i, v in enumerate(values):
        total = (total + (i + 1) * int(v)) & MASK64
    return total


def checksum_floats(values):
    bits = np.asarray(values, dtype=np.float64).view(np.uint64)
    return checksum_ints(bits)


def floats(values):
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def ints(values):
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def raw_u32(seed, n):
    rs = np.random.RandomState(seed)
    out = rs.randint(0, 2**32, size=n, dtype=np.uint32)
    # Cross-check against the bit generator's raw output.
    bitgen = np.random.MT19937()
    bitgen._legacy_seeding(seed)
    assert (bitgen.random_raw(n) == out).all()
    return out


def main():
    print(f"// numpy {np.__version__}")
    seeds = [0, 1, 42, 2**32 - 1]

    print("// next_u32: seed, first 8, checksum of the first 5000")
    for seed in seeds:
        values = raw_u32(seed, 5000)
        print(f"({seed}, {ints(values[:8])}, {checksum_ints(values)}),")

    print("// random_sample: seed, first 6, values at 311, 312, 313, checksum of the first 5000")
    for seed in seeds:
        values = np.random.RandomState(seed).random_sample(5000)
        picks = [values[311], values[312], values[313]]
        print(f"({seed}, {floats(values[:6])}, {floats(picks)}, {checksum_floats(values)}),")

    print("// randn(5) then standard_normal() then randn(2, 3) then randn(4): seed, values")
    for seed in seeds:
        rs = np.random.RandomState(seed)
        values = list(rs.randn(5)) + [rs.standard_normal()] + list(rs.randn(2, 3).ravel())
        values += list(rs.randn(4))
        print(f"({seed}, {floats(values)}),")

    print("// standard_normal: seed, checksum of the first 5001")
    for seed in seeds:
        values = np.random.RandomState(seed).standard_normal(5001)
        print(f"({seed}, {checksum_floats(values)}),")

    print("// seed() drops the cached gauss: seed 3, normal, reseed 3, normal")
    rs = np.random.RandomState(3)
    first = rs.standard_normal()
    rs.seed(3)
    second = rs.standard_normal()
    assert first == second
    print(floats([first, second]))

    print("// randint(0, high) scalar calls: seed, high, first 10, checksum of 2000")
    highs = [1, 2, 5, 200, 55000, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**33, 2**40 + 3, 2**62]
    for seed in [0, 7]:
        for high in highs:
            rs = np.random.RandomState(seed)
            values = [rs.randint(0, high) for _ in range(2000)]
            print(f"({seed}, {high}, {ints(values[:10])}, {checksum_ints(values)}),")

    print("// choice(n, size): seed, n, size, first 10, checksum")
    for seed, n, size in [(0, 5, 100), (1, 200, 1000), (2, 55000, 200), (3, 2**31, 50)]:
        values = np.random.RandomState(seed).choice(n, size)
        print(f"({seed}, {n}, {size}, {ints(values[:10])}, {checksum_ints(values)}),")

    print("// permutation(n): seed, n, first 10 (or all), checksum")
    for seed, n in [(0, 0), (0, 1), (0, 2), (1, 10), (2, 1000), (3, 55000), (4, 60000)]:
        values = np.random.RandomState(seed).permutation(n)
        print(f"({seed}, {n}, {ints(values[:10])}, {checksum_ints(values)}),")

    print("// uniform(-1.5, 2.5): seed, first 6")
    for seed in [0, 5]:
        rs = np.random.RandomState(seed)
        print(f"({seed}, {floats([rs.uniform(-1.5, 2.5) for _ in range(6)])}),")

    print("// interleaved: seed 11, normal, randint(0, 10), random_sample, normal, normal,")
    print("// permutation(5), choice(55000, 3), uniform(0, 1), normal")
    rs = np.random.RandomState(11)
    a = rs.standard_normal()
    b = rs.randint(0, 10)
    c = rs.random_sample()
    d = rs.standard_normal()
    e = rs.standard_normal()
    f = rs.permutation(5)
    g = rs.choice(55000, 3)
    h = rs.uniform(0.0, 1.0)
    i = rs.standard_normal()
    print(f"{floats([a])}, {b}, {floats([c, d, e])}, {ints(f)}, {ints(g)}, {floats([h, i])}")


if __name__ == "__main__":
    main()
