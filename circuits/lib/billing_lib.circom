pragma circom 2.1.5;

// Helper templates of the bn128-poseidon8-v1 billing circuit (circuits/billing.circom).
// Every template states the range its inputs must already be in; the caller enforces it.

include "bitify.circom";
include "comparators.circom";

// Asserts 0 <= in < 2^n as an integer (n <= 252, so no aliasing modulo p).
template AssertBits(n) {
    assert(n <= 252);
    signal input in;
    component bits = Num2Bits(n);
    bits.in <== in;
    _ <== bits.out;
}

// out = 1 if in >= 0 else 0, for an integer in with -2^n <= in < 2^n (n <= 251).
// The one bit-decomposition of in + 2^n, which is then in [0, 2^(n+1)), gives its sign as bit n.
template NonNegative(n) {
    assert(n <= 251);
    signal input in;
    signal output out;
    component bits = Num2Bits(n + 1);
    bits.in <== in + (1 << n);
    for (var i = 0; i < n; i++) {
        _ <== bits.out[i];
    }
    out <== bits.out[n];
}

// Tier bounds B1..B3 of the graduated tariff, each a finite value in [1, 2^64) or the padding
// value INF = 2^65, with: INF padding only at the end (isInf monotone), finite bounds strictly
// increasing, and the last finite bound < 2^64. Then 0 < B1 <= B2 <= B3 <= INF.
template TierBounds() {
    var INF = 1 << 65;
    signal input bound[3];
    signal output isInf[3];

    component eq[3];
    for (var i = 0; i < 3; i++) {
        eq[i] = IsZero();
        eq[i].in <== bound[i] - INF;
        isInf[i] <== eq[i].out;
    }
    // once INF, always INF
    isInf[0] * (1 - isInf[1]) === 0;
    isInf[1] * (1 - isInf[2]) === 0;

    // a finite bound exceeds the previous one (B0 = 0) by at least 1 and by less than 2^64 + 1
    signal gap[3];
    gap[0] <== (1 - isInf[0]) * (bound[0] - 1);
    gap[1] <== (1 - isInf[1]) * (bound[1] - bound[0] - 1);
    gap[2] <== (1 - isInf[2]) * (bound[2] - bound[1] - 1);
    component gapBits[3];
    for (var i = 0; i < 3; i++) {
        gapBits[i] = AssertBits(64);
        gapBits[i].in <== gap[i];
    }

    // the last finite bound (0 when there is none) is < 2^64; with the gaps, so is every finite bound
    signal last[3];
    last[0] <== (isInf[1] - isInf[0]) * bound[0];
    last[1] <== (isInf[2] - isInf[1]) * bound[1];
    last[2] <== (1 - isInf[2]) * bound[2];
    component lastBits = AssertBits(64);
    lastBits.in <== last[0] + last[1] + last[2];
}

// out[i] = min(x, bound[i]) for a position 0 <= x < 2^xBits (xBits <= 65) and bounds validated by
// TierBounds (so 0 = B0 < B1 <= B2 <= B3 <= B4 = INF = 2^65, strictly increasing while finite).
// The prover names the tier k in {0..3} that holds x (two bits); the circuit checks
// B_k <= x < B_{k+1}, which determines k uniquely, and then min(x, B_i) = x exactly when k < i.
template MinWithBounds(xBits) {
    assert(xBits <= 65);
    var INF = 1 << 65;
    signal input x;
    signal input bound[3];
    signal output out[3];

    var k = 0;
    for (var i = 0; i < 3; i++) {
        k += bound[i] <= x ? 1 : 0;
    }
    signal k0;
    signal k1;
    k0 <-- k & 1;
    k1 <-- (k >> 1) & 1;
    k0 * (k0 - 1) === 0;
    k1 * (k1 - 1) === 0;
    signal k01 <== k0 * k1;
    // one-hot selectors s_j = [k == j]
    var s0 = 1 - k0 - k1 + k01;
    var s1 = k0 - k01;
    var s2 = k1 - k01;
    var s3 = k01;

    signal lo[3];
    lo[0] <== s1 * bound[0];
    lo[1] <== s2 * bound[1];
    lo[2] <== s3 * bound[2];
    signal hi[3];
    hi[0] <== s0 * bound[0];
    hi[1] <== s1 * bound[1];
    hi[2] <== s2 * bound[2];

    // B_k <= x: x - B_k in [0, 2^xBits)
    component aboveLo = AssertBits(xBits);
    aboveLo.in <== x - (lo[0] + lo[1] + lo[2]);
    // x < B_{k+1}: B_{k+1} - x - 1 in [0, 2^65)
    component belowHi = AssertBits(65);
    belowHi.in <== hi[0] + hi[1] + hi[2] + s3 * INF - x - 1;

    out[0] <== bound[0] + s0 * (x - bound[0]);
    out[1] <== bound[1] + (1 - k1) * (x - bound[1]);
    out[2] <== bound[2] + (1 - k01) * (x - bound[2]);
}
