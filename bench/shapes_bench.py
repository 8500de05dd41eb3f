"""What the declared shapes cost on the message hot path (POST /api/v1/consultations/{id}/messages):
reading a body into ``MessageNew`` and, in development mode, checking the answer against
``Message``. Run: python bench/shapes_bench.py"""

from __future__ import annotations

import json
import timeit

from consult.http import schemas as s
from consult.http import shapes
from consult.http import validation as v
from consult.model.vocabulary import DEFAULT

NAMES = shapes.names_for(DEFAULT, ["other"], ["kela", "vantaa"])
ITEM = {"category": "application.status", "value": "Hakemus saapunut 1.12.", "consent_id": None}
BODY = json.dumps({"text": "Asiakkaan hakemus on vireillä; liitteet puuttuvat. " * 4,
                   "data": [ITEM] * 5}).encode()
ANSWER = json.dumps({
    "id": "1" * 36, "consultation_id": "2" * 36,
    "author": {"id": "kela.aino", "name": "Aino", "org": "kela", "role": "advisor"},
    "text": "Asiakkaan hakemus on vireillä. " * 4, "data": [{"category": "application.status", "value": "x"}] * 5,
    "created_at": "2026-12-02T10:00:00+00:00", "flagged_categories": [], "content_destroyed": False,
    "read_by": [], "policy": {"version": "v1", "withheld": []}, "identifiers": [], "sensitive": [],
}).encode()


def main() -> None:
    n = 20_000
    for name, fn in [
        ("loads (the edge's JSON loader)", lambda: v.loads(BODY)),
        ("loads + convert into MessageNew", lambda: shapes.convert(v.loads(BODY), s.MessageNew, NAMES)),
        ("check the answer against Message", lambda: shapes.check_answer(ANSWER, s.Message)),
    ]:
        per = min(timeit.repeat(fn, number=n, repeat=3)) / n
        print(f"{name:40s} {per * 1e6:7.1f} µs")


if __name__ == "__main__":
    main()
