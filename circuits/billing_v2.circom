pragma circom 2.1.5;

// meterproof billing binding, version bn128-poseidon8-v2 (docs/zk-binding.md).
//
// Statement: "I know a tariff, committed to by `tariff_commitment` under a secret salt, such that
// `charge` is the charge of DESIGN §3 (exactly as computeCharge in src/core/charge.ts) of an event
// of `usage_units` units with `outcome` at running total `cumulative_units_before`, and
// `cumulative_units_after` is that total plus the event's billable units; the proof is for the
// signed statement whose tag is `statement_tag`."
//
// Public signals, in this order (all public inputs; every one is derived by the verifier from the
// signed StatementV2 and the tariff version's published commitment: publicSignalsV2 in
// src/core/binding-v2.ts):
//    0. statement_tag            first 31 bytes of SHA-256 over the canonical statement (< 2^248)
//    1. event_digest_hi          \ the salted event digest of the statement, as two big-endian
//    2. event_digest_lo          / 128-bit halves
//    3. tariff_digest_hi         \ the salted tariff digest of the statement, likewise
//    4. tariff_digest_lo         /
//    5. usage_units              < 2^64
//    6. outcome                  code < 4
//    7. cumulative_units_before  < 2^64
//    8. cumulative_units_after   = cumulative_units_before + billable * usage_units (< 2^65)
//    9. charge                   (micros, < 2^64) = the charge computed here
//   10. tariff_commitment        = Poseidon9(TAG_TARIFF_V2, tariff_digest_hi, tariff_digest_lo,
//                                    pack(unit_quantum, min_charge_micros, max_charge_micros),
//                                    pack(P1, B1), pack(P2, B2), pack(P3, B3),
//                                    pack(P4, rounding_mode), tariff_salt)
//   where pack(a, b, c) = a + b*2^66 + c*2^132 (each argument is range-checked below 2^66, so pack
//   is injective and below p). A wrong claimed charge, running total after or commitment has no
//   witness.
//
// Private inputs: the tariff numerics (unit_quantum, min/max_charge_micros, rounding_mode,
// tier_price[4], tier_bound[3]) and tariff_salt.
//
// Enforced here (circuits/v2/charge_v2.circom, the v1 arithmetic unchanged): usage_units,
// cumulative_units_before, unit_quantum, min/max_charge_micros and the four tier prices are
// < 2^64; unit_quantum >= 1; min <= max; outcome and rounding_mode codes are < 4; tier bounds are
// each in [1, 2^64) or exactly INF = 2^65, INF only as trailing padding, finite ones strictly
// increasing; the price of a tier after an INF bound is 0; the division of the raw charge by the
// quantum is Euclidean. cumulative_units_after is exact over the integers (billable in {0, 1},
// before and usage < 2^64).
//
// Preconditions enforced OUTSIDE the circuit (by whoever relies on a proof):
//   - Every public signal is recomputed from the signed statement (publicSignalsV2), never taken
//     from the prover: statement_tag binds the proof to everything the statement says (binding
//     version, tenant, window, chain id/seq/prev, issue time, key), which the circuit cannot see.
//     statement_tag and the event digest limbs enter no arithmetic here; each has a quadratic
//     constraint of its own so it is part of the R1CS and cannot be swapped on a valid proof.
//   - The digest limbs are not range-checked here: they come from the statement's digests.
//   - tariff_commitment is the published v2 commitment of the tariff version (tariffCommitmentV2).
//     tariff_salt is drawn uniformly in [0, p) (254 random bits, rejection-sampled) per tariff
//     version and kept secret: without it the commitment and the salted digest cannot be tested
//     against guessed prices. It is not range-checked (it is only hashed).
//   - cumulative_units_before is the true running total of billable units of the tenant, meter and
//     window (enforced by the hash-linked statement chain: it is the previous statement's
//     cumulative_units_after). The schema bounds cumulative_units_after below 2^64.
//
// Domain tag: TAG_TARIFF_V2 = big-endian integer of ASCII "meterproof.tariff.v2".
// Codes: outcome success=0 error=1 timeout=2 partial=3; rounding floor=0 ceil=1 half_up=2 half_even=3.

include "poseidon.circom";
include "v2/charge_v2.circom";

template BillingV2() {
    var TAG_TARIFF_V2 = 624542508830653094073237139877366541719039800882;
    var TWO66 = 1 << 66;
    var TWO132 = 1 << 132;

    // public (declared first: this is the order of the public signals)
    signal input statement_tag;
    signal input event_digest_hi;
    signal input event_digest_lo;
    signal input tariff_digest_hi;
    signal input tariff_digest_lo;
    signal input usage_units;
    signal input outcome;
    signal input cumulative_units_before;
    signal input cumulative_units_after;
    signal input charge;
    signal input tariff_commitment;

    // private: the tariff and its salt
    signal input unit_quantum;
    signal input min_charge_micros;
    signal input max_charge_micros;
    signal input rounding_mode;
    signal input tier_price[4];
    signal input tier_bound[3];
    signal input tariff_salt;

    // ---- the charge (ranges included)
    component engine = ChargeV2();
    engine.usage_units <== usage_units;
    engine.outcome <== outcome;
    engine.cumulative_units_before <== cumulative_units_before;
    engine.unit_quantum <== unit_quantum;
    engine.min_charge_micros <== min_charge_micros;
    engine.max_charge_micros <== max_charge_micros;
    engine.rounding_mode <== rounding_mode;
    engine.tier_price <== tier_price;
    engine.tier_bound <== tier_bound;
    charge === engine.computedCharge;

    // ---- the running total: only billable outcomes advance it
    cumulative_units_after - cumulative_units_before === engine.billable * usage_units;

    // ---- the salted tariff commitment
    component tariffHash = Poseidon(9);
    tariffHash.inputs[0] <== TAG_TARIFF_V2;
    tariffHash.inputs[1] <== tariff_digest_hi;
    tariffHash.inputs[2] <== tariff_digest_lo;
    tariffHash.inputs[3] <== unit_quantum + min_charge_micros * TWO66 + max_charge_micros * TWO132;
    for (var i = 0; i < 3; i++) {
        tariffHash.inputs[4 + i] <== tier_price[i] + tier_bound[i] * TWO66;
    }
    tariffHash.inputs[7] <== tier_price[3] + rounding_mode * TWO66;
    tariffHash.inputs[8] <== tariff_salt;
    tariff_commitment === tariffHash.out;

    // ---- public inputs that enter no other constraint: one quadratic constraint each
    signal tagSquare <== statement_tag * statement_tag;
    signal eventHiSquare <== event_digest_hi * event_digest_hi;
    signal eventLoSquare <== event_digest_lo * event_digest_lo;
}

component main {public [
    statement_tag,
    event_digest_hi,
    event_digest_lo,
    tariff_digest_hi,
    tariff_digest_lo,
    usage_units,
    outcome,
    cumulative_units_before,
    cumulative_units_after,
    charge,
    tariff_commitment
]} = BillingV2();
