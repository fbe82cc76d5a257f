pragma circom 2.1.5;

// The charge arithmetic of binding version bn128-poseidon8-v2 (circuits/billing_v2.circom): the
// arithmetic and ranges of bn128-poseidon8-v1 (circuits/billing.circom, frozen) unchanged, as one
// template whose outputs are the charge of DESIGN §3 (exactly as computeCharge in
// src/core/charge.ts) and whether the outcome is billable.
//
// Enforced here: usage_units, cumulative_units_before, unit_quantum, min/max_charge_micros and
// the four tier prices are < 2^64; unit_quantum >= 1; min <= max; outcome and rounding_mode codes
// are < 4; tier bounds are each in [1, 2^64) or exactly INF = 2^65, INF only as trailing padding,
// finite ones strictly increasing; the price of a tier after an INF bound is 0; the division of
// the raw charge by the quantum is the Euclidean one (0 <= remainder < quantum, quotient < 2^128).
// No intermediate wraps around the field: c + u < 2^65, raw < 2^128, quotient * quantum < 2^192.
// Outputs: billable in {0, 1} (outcome success=0 or partial=3); computedCharge < 2^64.
// Codes: outcome success=0 error=1 timeout=2 partial=3; rounding floor=0 ceil=1 half_up=2 half_even=3.

include "bitify.circom";
include "comparators.circom";
include "../lib/billing_lib.circom";

template ChargeV2() {
    var TWO64 = 1 << 64;

    signal input usage_units;
    signal input outcome;
    signal input cumulative_units_before;
    signal input unit_quantum;
    signal input min_charge_micros;
    signal input max_charge_micros;
    signal input rounding_mode;
    signal input tier_price[4];
    signal input tier_bound[3];
    signal output billable;
    signal output computedCharge;

    // ---- ranges of the event numerics
    component unitsRange = AssertBits(64);
    unitsRange.in <== usage_units;
    component cumulativeRange = AssertBits(64);
    cumulativeRange.in <== cumulative_units_before;
    component outcomeBits = Num2Bits(2);
    outcomeBits.in <== outcome;
    // billable: success (00) or partial (11)
    signal outcomeBoth <== outcomeBits.out[0] * outcomeBits.out[1];
    billable <== 1 - outcomeBits.out[0] - outcomeBits.out[1] + 2 * outcomeBoth;

    // ---- ranges of the tariff numerics
    component quantumRange = AssertBits(64);
    quantumRange.in <== unit_quantum;
    component minRange = AssertBits(64);
    minRange.in <== min_charge_micros;
    component maxRange = AssertBits(64);
    maxRange.in <== max_charge_micros;
    component minLeMax = AssertBits(64);
    minLeMax.in <== max_charge_micros - min_charge_micros;
    component modeBits = Num2Bits(2);
    modeBits.in <== rounding_mode;
    component priceRange[4];
    for (var i = 0; i < 4; i++) {
        priceRange[i] = AssertBits(64);
        priceRange[i].in <== tier_price[i];
    }
    component bounds = TierBounds();
    bounds.bound <== tier_bound;
    // no price behind the INF padding (keeps the encoding of a tariff unique)
    for (var i = 0; i < 3; i++) {
        bounds.isInf[i] * tier_price[i + 1] === 0;
    }

    // ---- units per tier: the event covers positions [c, c + u); below bound B there are
    // min(c + u, B) - min(c, B) of them.
    component atStart = MinWithBounds(64);
    atStart.x <== cumulative_units_before;
    atStart.bound <== tier_bound;
    component atEnd = MinWithBounds(65);
    atEnd.x <== cumulative_units_before + usage_units;
    atEnd.bound <== tier_bound;
    var below[3];
    for (var i = 0; i < 3; i++) {
        below[i] = atEnd.out[i] - atStart.out[i];
    }
    signal tierCharge[4];
    tierCharge[0] <== below[0] * tier_price[0];
    tierCharge[1] <== (below[1] - below[0]) * tier_price[1];
    tierCharge[2] <== (below[2] - below[1]) * tier_price[2];
    tierCharge[3] <== (usage_units - below[2]) * tier_price[3];
    // raw < 2^128: the tier units are >= 0 and sum to u < 2^64, every price is < 2^64
    var raw = tierCharge[0] + tierCharge[1] + tierCharge[2] + tierCharge[3];

    // ---- Euclidean division raw = quotient * quantum + remainder, 0 <= remainder < quantum
    signal quotient;
    signal remainder;
    // (a zero quantum must fail the constraints below, not trap in the witness calculator)
    quotient <-- unit_quantum == 0 ? 0 : raw \ unit_quantum;
    remainder <-- unit_quantum == 0 ? 0 : raw % unit_quantum;
    component quotientBits = Num2Bits(128);
    quotientBits.in <== quotient;
    component remainderRange = AssertBits(64);
    remainderRange.in <== remainder;
    // remainder < quantum (and so quantum >= 1)
    component remainderBelowQuantum = AssertBits(64);
    remainderBelowQuantum.in <== unit_quantum - remainder - 1;
    // over the integers: quotient * quantum + remainder < 2^192 + 2^64 < p
    raw === quotient * unit_quantum + remainder;

    // ---- rounding: up = 1 when the quotient is to be increased
    component remainderZero = IsZero();
    remainderZero.in <== remainder;
    // 2r - quantum in (-2^64, 2^65)
    component halfOrMore = NonNegative(65);
    halfOrMore.in <== 2 * remainder - unit_quantum;
    component exactlyHalf = IsZero();
    exactlyHalf.in <== 2 * remainder - unit_quantum;
    var m0 = modeBits.out[0];
    var m1 = modeBits.out[1];
    // ceil (m1 m0 = 01): r > 0
    signal ceilUp <== m0 * (1 - remainderZero.out);
    signal ceilUpHigh <== m1 * ceilUp;
    // half_up (10) and half_even (11): 2r >= quantum ...
    signal halfUp <== m1 * halfOrMore.out;
    // ... except half_even on an exact half with an even quotient (bit 0 of the quotient)
    signal halfEven <== m1 * m0;
    signal tieEvenQuotient <== exactlyHalf.out * (1 - quotientBits.out[0]);
    signal tieDown <== halfEven * tieEvenQuotient;
    var up = ceilUp - ceilUpHigh + halfUp - tieDown;

    // ---- clamp to [min, max]. A quotient >= 2^64 is above max: cap it at 2^64 first, so that the
    // comparisons below are between numbers <= 2^64.
    var quotientLow = 0;
    var quotientHigh = 0;
    for (var i = 0; i < 64; i++) {
        quotientLow += quotientBits.out[i] * (1 << i);
        quotientHigh += quotientBits.out[64 + i] * (1 << i);
    }
    component quotientSmall = IsZero();
    quotientSmall.in <== quotientHigh;
    var roundedSmall = quotientLow + up;
    signal capped <== roundedSmall + (1 - quotientSmall.out) * (TWO64 - roundedSmall);
    // capped - min in (-2^64, 2^64]; max - capped in [-2^64, 2^64)
    component atLeastMin = NonNegative(65);
    atLeastMin.in <== capped - min_charge_micros;
    component atMostMax = NonNegative(65);
    atMostMax.in <== max_charge_micros - capped;
    signal raised <== capped + (1 - atLeastMin.out) * (min_charge_micros - capped);
    signal clamped <== raised + (1 - atMostMax.out) * (max_charge_micros - raised);
    // error and timeout: 0, no minimum
    computedCharge <== billable * clamped;
}
