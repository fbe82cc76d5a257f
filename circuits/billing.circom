pragma circom 2.1.5;

// meterproof billing binding, version bn128-poseidon8-v1 (DESIGN §3, §5; docs/zk-binding.md).
//
// Statement: "I know a meter event and a tariff such that `charge` is the charge of DESIGN §3
// (exactly as computeCharge in src/core/charge.ts), `tariff_commitment` commits to the tariff and
// `binding_commitment` binds the event, the tariff and the charge."
//
// Public signals, in this order (public inputs, each constrained equal to the value computed here,
// so a wrong claimed value has no witness):
//   0. binding_commitment = Poseidon4(TAG_BINDING, event_commitment, tariff_commitment, charge)
//   1. charge             (micros, < 2^64)
//   2. tariff_commitment  = Poseidon8(TAG_TARIFF, tariff_digest_hi, tariff_digest_lo,
//                             pack(unit_quantum, min_charge_micros, max_charge_micros),
//                             pack(P1, B1), pack(P2, B2), pack(P3, B3), pack(P4, rounding_mode))
//   where event_commitment = Poseidon8(TAG_EVENT, event_digest_hi, event_digest_lo, usage_units,
//                             outcome, cumulative_units_before, blinding, 0)
//   and pack(a, b, c) = a + b*2^66 + c*2^132 (each argument is range-checked below 2^66, so pack is
//   injective and below p).
//
// Enforced here: usage_units, cumulative_units_before, unit_quantum, min/max_charge_micros and
// the four tier prices are < 2^64; unit_quantum >= 1; min <= max; outcome and rounding_mode codes
// are < 4; tier bounds are each in [1, 2^64) or exactly INF = 2^65, INF only as trailing padding,
// finite ones strictly increasing; the price of a tier after an INF bound is 0; the division of
// the raw charge by the quantum is the Euclidean one (0 <= remainder < quantum, quotient < 2^128).
// No intermediate wraps around the field: c + u < 2^65, raw < 2^128, quotient * quantum < 2^192.
//
// Preconditions enforced OUTSIDE the circuit (by whoever relies on a proof):
//   - event_digest_hi/lo are the two big-endian 128-bit halves of SHA-256 over the RFC 8785
//     canonical bytes of the meter event, and tariff_digest_hi/lo likewise of the tariff
//     snapshot. They enter only the hashes and are not range-checked here: the relying party
//     recomputes the commitments from the digests (src/core/commitment.ts), so any other limb
//     values give commitments that do not match.
//   - The tariff numerics are the encoding (src/core/field.ts) of the snapshot with that digest;
//     tariff_commitment is recomputed from the snapshot or compared with the published commitment
//     of the tariff version. The circuit cannot see the JSON.
//   - usage_units and outcome are the event's; cumulative_units_before is the true running total
//     of billable units of the tenant, meter and window (enforced by the hash-linked statement
//     chain, not by the circuit).
//   - blinding is drawn uniformly at random in [0, p) for each event and never reused; it is not
//     range-checked (it is only hashed).
//   - charge is compared by the verifier with the signed statement's charge_micros.
//
// Domain tags are the big-endian integers of ASCII strings:
//   TAG_TARIFF  = "meterproof.tariff.v1", TAG_EVENT = "meterproof.event.v1",
//   TAG_BINDING = "meterproof.binding.v1".
// Codes: outcome success=0 error=1 timeout=2 partial=3; rounding floor=0 ceil=1 half_up=2 half_even=3.

include "poseidon.circom";
include "bitify.circom";
include "comparators.circom";
include "lib/billing_lib.circom";

template Billing() {
    var TAG_TARIFF = 624542508830653094073237139877366541719039800881;
    var TAG_EVENT = 2439619175119738648723582576570995845586908721;
    var TAG_BINDING = 159882882260647192082748707723750522306593062549041;
    var TWO64 = 1 << 64;
    var TWO66 = 1 << 66;
    var TWO132 = 1 << 132;

    // public (declared first: this is the order of the public signals)
    signal input binding_commitment;
    signal input charge;
    signal input tariff_commitment;

    // private: the event
    signal input event_digest_hi;
    signal input event_digest_lo;
    signal input usage_units;
    signal input outcome;
    signal input cumulative_units_before;
    signal input blinding;

    // private: the tariff
    signal input tariff_digest_hi;
    signal input tariff_digest_lo;
    signal input unit_quantum;
    signal input min_charge_micros;
    signal input max_charge_micros;
    signal input rounding_mode;
    signal input tier_price[4];
    signal input tier_bound[3];

    // ---- ranges of the event numerics
    component unitsRange = AssertBits(64);
    unitsRange.in <== usage_units;
    component cumulativeRange = AssertBits(64);
    cumulativeRange.in <== cumulative_units_before;
    component outcomeBits = Num2Bits(2);
    outcomeBits.in <== outcome;
    // billable: success (00) or partial (11)
    signal outcomeBoth <== outcomeBits.out[0] * outcomeBits.out[1];
    signal billable <== 1 - outcomeBits.out[0] - outcomeBits.out[1] + 2 * outcomeBoth;

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
    signal computedCharge <== billable * clamped;
    charge === computedCharge;

    // ---- commitments
    component tariffHash = Poseidon(8);
    tariffHash.inputs[0] <== TAG_TARIFF;
    tariffHash.inputs[1] <== tariff_digest_hi;
    tariffHash.inputs[2] <== tariff_digest_lo;
    tariffHash.inputs[3] <== unit_quantum + min_charge_micros * TWO66 + max_charge_micros * TWO132;
    for (var i = 0; i < 3; i++) {
        tariffHash.inputs[4 + i] <== tier_price[i] + tier_bound[i] * TWO66;
    }
    tariffHash.inputs[7] <== tier_price[3] + rounding_mode * TWO66;
    tariff_commitment === tariffHash.out;

    component eventHash = Poseidon(8);
    eventHash.inputs[0] <== TAG_EVENT;
    eventHash.inputs[1] <== event_digest_hi;
    eventHash.inputs[2] <== event_digest_lo;
    eventHash.inputs[3] <== usage_units;
    eventHash.inputs[4] <== outcome;
    eventHash.inputs[5] <== cumulative_units_before;
    eventHash.inputs[6] <== blinding;
    eventHash.inputs[7] <== 0;

    component bindingHash = Poseidon(4);
    bindingHash.inputs[0] <== TAG_BINDING;
    bindingHash.inputs[1] <== eventHash.out;
    bindingHash.inputs[2] <== tariffHash.out;
    bindingHash.inputs[3] <== charge;
    binding_commitment === bindingHash.out;
}

component main {public [binding_commitment, charge, tariff_commitment]} = Billing();
