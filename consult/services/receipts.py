"""The consent receipt handed to the client (after the Kantara Consent Receipt and ISO/IEC TS
27560): what they agreed to, with whom, for what, until when, and how to withdraw."""

from __future__ import annotations

from typing import Any

_TEXT = {
    "fi": {
        "title": "KUITTI SUOSTUMUKSESTA",
        "receipt": "Kuitin tunniste", "recorded": "Kirjattu", "by": "Kirjannut organisaatio",
        "client": "Asiakkaan tunniste palvelussa", "grantor": "Suostumuksen antaja",
        "categories": "Tiedot, joita suostumus koskee", "recipients": "Vastaanottajat",
        "purposes": "Käyttötarkoitus", "until": "Voimassa", "open": "toistaiseksi", "method": "Tapa",
        "status": "Tila",
        "withdraw": "Voit peruuttaa suostumuksen milloin tahansa kertomalla siitä Kelan tai kunnan "
                    "asiakaspalvelussa. Peruutus ei koske tietoja, jotka on jo luovutettu sen ollessa voimassa.",
    },
    "sv": {
        "title": "KVITTO PÅ SAMTYCKE",
        "receipt": "Kvittots identifierare", "recorded": "Registrerat", "by": "Registrerad av organisation",
        "client": "Kundens identifierare i tjänsten", "grantor": "Samtycket gavs av",
        "categories": "Uppgifter som samtycket gäller", "recipients": "Mottagare",
        "purposes": "Ändamål", "until": "Giltigt", "open": "tills vidare", "method": "Sätt", "status": "Status",
        "withdraw": "Du kan när som helst återkalla samtycket genom att meddela FPA:s eller kommunens "
                    "kundtjänst. Återkallelsen gäller inte uppgifter som redan lämnats ut medan det var giltigt.",
    },
    "en": {
        "title": "CONSENT RECEIPT",
        "receipt": "Receipt id", "recorded": "Recorded", "by": "Recorded by organisation",
        "client": "Client reference in the service", "grantor": "Consent given by",
        "categories": "Information the consent covers", "recipients": "Recipients",
        "purposes": "Purpose", "until": "Valid", "open": "until further notice", "method": "Method",
        "status": "Status",
        "withdraw": "You may withdraw the consent at any time by telling Kela's or the municipality's "
                    "customer service. Withdrawal does not undo disclosures made while it was valid.",
    },
}


def receipt_text(consent: dict[str, Any], lang: str = "fi") -> str:
    t = _TEXT.get(lang, _TEXT["fi"])
    lines = [
        t["title"],
        "",
        f"{t['receipt']}: {consent['id']}@{consent['version']}",
        f"{t['recorded']}: {consent['created_at']}",
        f"{t['by']}: {consent['recorded_org']}",
        f"{t['client']}: {consent['client_ref']}",
        f"{t['grantor']}: {consent['grantor']}",
        f"{t['method']}: {consent['method']}",
        f"{t['categories']}: {', '.join(consent['categories'])}",
        f"{t['recipients']}: {', '.join(consent['recipient_orgs'] + consent['recipient_roles'] + consent['recipient_users'])}",
        f"{t['purposes']}: {', '.join(consent['purposes'])}",
        f"{t['until']}: {consent['valid_from']} – {consent['valid_until'] or t['open']}",
        f"{t['status']}: {consent['status']}",
        "",
        t["withdraw"],
        "",
    ]
    return "\n".join(lines)
