"""Derive `catalog.json` from the research corpus (`carrier-headers.json`).

The corpus is written for people: 204 sourced rows with prose formats and free-text sources. The
guard needs a small, reviewable table: the identifying names (high and medium risk) with the kind
DESIGN's metrics use, and the low-risk names as an allow-list. Re-run after the corpus changes and
review the diff:

    python -m guard.data.derive ../shared/corpus/carrier-headers.json > guard/data/catalog.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

KIND = {
    "msisdn": "msisdn",
    "imsi": "imsi",
    "imei": "imei",
    "subscriber-token": "subscriber_token",
    "device-id": "device_id",
    "location-cell": "location",
    "network-info": "network",
}

# The corpus's `other` rows, split by what they carry (DESIGN: session, account or other).
OTHER_KIND = {
    "x-up-subscriber-cos": "account",  # plan / class of service
    "x-up-subscriber-coi": "account",  # class of interest
    "x_mti_username": "account",
    "x_mti_email": "account",
    "x_mti_empid": "account",
    "x-charging-id": "session",  # GTP charging ID, per PDP session
    "x-huawei-chargingid": "session",
    "accounting-session-id": "session",  # RADIUS Acct-Session-Id
    "x-wap-session-id": "session",
    "x-msp-session-id": "session",
    "charging-characteristics": "session",
    "x-nokia-prepaidind": "account",
    "x-h3g-customer-type": "account",
    "x-h3g-customer-subtype": "account",
    "x-mms-prepaid-flag": "account",
    "x-ee-brand-id": "account",
    "x-saucer": "other",
    "x-fcckv2": "other",
    "x-wap-kid": "other",
    "x-vfprovider": "other",
    "x-vfstatus": "other",
}

# Generic names: every catalog name is matched exactly (after folding), never as a pattern. These
# rows record why each generic one is still listed, and why no stem is derived from it.
GENERIC = {
    "cli": "Only in third-party MSISDN lists; as a token 'cli' ends X-Client-Cli or names a tool.",
    "mdn": "MTS India; 'mdn' is a name-rule token, but only as a whole token of the name.",
    "msisdn": "Claro and T-Mobile US send it bare; the whole-token msisdn rule covers it too.",
    "clientid": "Sprint's token; 'clientid' as a pattern would strip "
    "Client-Id and X-IBM-Client-Id.",
    "xid": "Seen in two tracker lists; a pattern would hit X-Request-Xid and friends.",
    "userip": "Subscriber IP; as a pattern 'ip' or 'userip' would hit "
    "X-Real-IP and True-Client-IP.",
    "x-source-id": "Possibly an internal MNO IP; 'source-id' is far too common to be a pattern.",
    "x-subscriber": "Guessed-looking list entry; 'subscriber' alone also names newsletter headers.",
    "x-subscriber-id": "Guessed-looking list entry; kept exact, 'subscriber' is not a stem.",
    "x-party-id": "Guessed-looking list entry; 'party-id' also appears in B2B APIs.",
    "apn": "Low risk (APN name); on the allow-list so value rules never touch it.",
    "profile": "Low risk (UAProf URL); on the allow-list so value rules never touch it.",
    "bearer": "Low risk (bearer type); on the allow-list so value rules never touch it.",
    "via": "Low risk proxy chain; kept, and never scanned.",
    "x-forwarded-for": "Low risk; carries the subscriber's private IP on mobile networks, "
    "which is a log-scrubbing question, not a stripping one (corpus section 0.5).",
    "forwarded": "Low risk; see x-forwarded-for.",
    "client-ip": "Low risk; see x-forwarded-for.",
    "x-wap-clientid": "Listed with its full name; 'clientid' is never a stem.",
    "x-em-uid": "Terminal ID; 'uid' is never a stem (X-Request-GUID, X-Uid-…).",
    "x-cspire-min": "MIN digits; 'min' is never a stem (X-Admin, X-RateLimit-Min).",
    "x-vivo-min": "MIN digits; 'min' is never a stem.",
}

# Other spellings the sources report for a catalog name.
ALIASES = {
    "x-up-vodacomgw-subid": ["x-upvodacomgw-subid"],
}


def fold(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def kind_of(row: dict[str, Any]) -> str:
    if row["kind"] == "other":
        return OTHER_KIND[row["name"]]
    return KIND[row["kind"]]


def derive(rows: list[dict[str, Any]]) -> dict[str, Any]:
    identifying: list[dict[str, Any]] = []
    low_risk: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        twin = seen.get(fold(row["name"]))
        if twin is not None:
            # `x-jinny-cid` and `x-jinny.cid` are one name once folded: keep one row.
            if (twin["kind"], twin["risk"]) != (kind_of(row), row["risk"]):
                raise SystemExit(f"{row['name']} folds onto {twin['name']} with another kind")
            twin.setdefault("aliases", []).append(row["name"])
            continue
        entry = {
            "name": row["name"],
            "kind": kind_of(row),
            "risk": row["risk"],
            "confidence": row["confidence"],
            "sources": len([s for s in row["source"].split(" | ") if s.strip()]),
        }
        if row["name"] in GENERIC:
            entry["why"] = GENERIC[row["name"]]
        if row["name"] in ALIASES:
            entry["aliases"] = ALIASES[row["name"]]
        seen[fold(row["name"])] = entry
        (low_risk if row["risk"] == "low" else identifying).append(entry)
    body = json.dumps([identifying, low_risk], sort_keys=True).encode()
    return {
        "version": "c" + hashlib.sha256(body).hexdigest()[:10],
        "source": "shared/corpus/carrier-headers.json (204 sourced rows; see its section 7)",
        "identifying": identifying,
        "low_risk": low_risk,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    args = parser.parse_args(argv)
    rows = json.loads(args.corpus.read_text(encoding="utf-8"))
    json.dump(derive(rows), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
