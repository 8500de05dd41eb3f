"""The consent receipt handed to the client (after the Kantara Consent Receipt and ISO/IEC TS
27560), in plain Finnish, Swedish or English: who discloses what to whom and why, until when,
who the controllers are and how to reach them, the right to withdraw and what follows from
refusing. It shows no internal code: categories, purposes, roles, methods and statuses are
written out, organisations by their controller names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from consult.config import Controller

HELSINKI = ZoneInfo("Europe/Helsinki")

#: Plain words for the policy's vocabulary, per language. Every category and purpose the loaded
#: policy knows must have one (a test holds this).
PLAIN: Final[dict[str, dict[str, dict[str, str]]]] = {
    "fi": {
        "category": {
            "application.status": "hakemuksesi käsittelyvaihe",
            "application.content": "hakemuksesi tiedot",
            "application.attachment": "hakemuksen liitteet, jotka olet toimittanut",
            "decision.period": "viimeisimmän päätöksesi voimassaoloaika",
            "decision.content": "päätöksen sisältö (ratkaisu, summat ja perustelut)",
            "decision.basic": "Kelan perustoimeentulotukipäätös",
            "decision.supplementary": "täydentävää toimeentulotukea koskeva päätös",
            "decision.preventive": "ehkäisevää toimeentulotukea koskeva päätös",
            "income.kela_benefit": "Kelan maksamat etuudet",
            "income.other": "muut tulot",
            "population_register": "osoite ja kotitalouden tiedot väestötietojärjestelmästä",
            "social_work.assessment": "sosiaalityön muistiinpanot ja palvelutarpeen arviointi",
            "social_work.statement": "sosiaalihuollon lausunto",
            "service_need.referral": "yhteydenotto sosiaalihuoltoon tuen tarpeestasi",
            "health": "terveyttäsi koskevat tiedot",
            "debt": "velat, ulosotto ja maksuhäiriöt",
            "housing.risk": "asunnottomuuden tai häädön uhka",
            "child_welfare": "lastensuojelun tiedot",
            "identity.hetu": "henkilötunnus",
        },
        "purpose": {
            "general": "yleinen neuvonta ilman asiakastietoja",
            "tt.application_intake": "toimeentulotukihakemuksesi vastaanottaminen",
            "tt.income_calculation": "toimeentulotukihakemuksesi tulolaskelma",
            "tt.service_guidance": "ohjaaminen sinulle sopiviin palveluihin ja etuuksiin",
            "tt.forwarding": "hakemuksesi ja Kelan päätöksen siirtäminen hyvinvointialueelle",
            "tt.social_services_statement": "sosiaalihuollon lausunto Kelalle",
            "tt.supplementary_assistance": "täydentävää toimeentulotukea koskeva asiasi",
            "tt.preventive_assistance": "ehkäisevää toimeentulotukea koskeva asiasi",
            "sh.referral": "yhteydenotto hyvinvointialueen sosiaalihuoltoon (sosiaalihuoltolain 35 §)",
            "sh.multidisciplinary": "Kelan ja hyvinvointialueen yhteistyö asiassasi",
            "ls.notification": "lastensuojeluilmoitus",
        },
        "role": {"advisor": "palveluneuvojat", "expert": "etuuskäsittelijät ja muut nimetyt asiantuntijat",
                 "social_worker": "sosiaalityöntekijät", "privacy_officer": "tietosuojavastaavat",
                 "admin": "pääkäyttäjät"},
        "grantor": {"self": "sinä itse", "guardian": "huoltajasi", "legal_representative": "laillinen edustajasi"},
        "method": {"written": "kirjallisesti", "oral": "suullisesti asioinnin yhteydessä",
                   "e_service": "sähköisessä asiointipalvelussa"},
        "status": {"active": "voimassa", "suspended": "keskeytetty", "withdrawn": "peruutettu",
                   "expired": "päättynyt"},
    },
    "sv": {
        "category": {
            "application.status": "hur långt din ansökan har kommit",
            "application.content": "uppgifterna i din ansökan",
            "application.attachment": "bilagor som du har lämnat in med ansökan",
            "decision.period": "hur länge ditt senaste beslut gäller",
            "decision.content": "beslutets innehåll (avgörandet, beloppen och motiveringen)",
            "decision.basic": "FPA:s beslut om grundläggande utkomststöd",
            "decision.supplementary": "beslut om kompletterande utkomststöd",
            "decision.preventive": "beslut om förebyggande utkomststöd",
            "income.kela_benefit": "förmåner som FPA betalar",
            "income.other": "andra inkomster",
            "population_register": "adress och uppgifter om hushållet ur befolkningsdatasystemet",
            "social_work.assessment": "anteckningar från socialarbetet och bedömning av servicebehovet",
            "social_work.statement": "socialvårdens utlåtande",
            "service_need.referral": "kontakt med socialvården om ditt behov av stöd",
            "health": "uppgifter om din hälsa",
            "debt": "skulder, utsökning och betalningsstörningar",
            "housing.risk": "hot om bostadslöshet eller vräkning",
            "child_welfare": "uppgifter inom barnskyddet",
            "identity.hetu": "personbeteckning",
        },
        "purpose": {
            "general": "allmän rådgivning utan klientuppgifter",
            "tt.application_intake": "mottagandet av din ansökan om utkomststöd",
            "tt.income_calculation": "inkomstkalkylen för din ansökan om utkomststöd",
            "tt.service_guidance": "handledning till tjänster och förmåner som passar dig",
            "tt.forwarding": "överföring av din ansökan och FPA:s beslut till välfärdsområdet",
            "tt.social_services_statement": "socialvårdens utlåtande till FPA",
            "tt.supplementary_assistance": "ditt ärende om kompletterande utkomststöd",
            "tt.preventive_assistance": "ditt ärende om förebyggande utkomststöd",
            "sh.referral": "kontakt med välfärdsområdets socialvård (35 § i socialvårdslagen)",
            "sh.multidisciplinary": "samarbete mellan FPA och välfärdsområdet i ditt ärende",
            "ls.notification": "barnskyddsanmälan",
        },
        "role": {"advisor": "servicerådgivare", "expert": "förmånshandläggare och andra utsedda sakkunniga",
                 "social_worker": "socialarbetare", "privacy_officer": "dataskyddsansvariga",
                 "admin": "huvudanvändare"},
        "grantor": {"self": "du själv", "guardian": "din vårdnadshavare",
                    "legal_representative": "din lagliga företrädare"},
        "method": {"written": "skriftligt", "oral": "muntligt vid besöket", "e_service": "i e-tjänsten"},
        "status": {"active": "gäller", "suspended": "avbrutet", "withdrawn": "återkallat", "expired": "har upphört"},
    },
    "en": {
        "category": {
            "application.status": "how far your application has got",
            "application.content": "the contents of your application",
            "application.attachment": "documents you handed in with your application",
            "decision.period": "until when your latest decision runs",
            "decision.content": "what was decided (the outcome, amounts and reasons)",
            "decision.basic": "Kela's decision on basic social assistance",
            "decision.supplementary": "the decision on supplementary social assistance",
            "decision.preventive": "the decision on preventive social assistance",
            "income.kela_benefit": "benefits paid by Kela",
            "income.other": "other income",
            "population_register": "your address and household from the population information system",
            "social_work.assessment": "social work notes and the assessment of your need for services",
            "social_work.statement": "the social services' statement",
            "service_need.referral": "contacting social services about your need for support",
            "health": "information about your health",
            "debt": "debts, enforcement and payment defaults",
            "housing.risk": "a threat of homelessness or eviction",
            "child_welfare": "child welfare information",
            "identity.hetu": "personal identity code",
        },
        "purpose": {
            "general": "general advice without client information",
            "tt.application_intake": "receiving your application for social assistance",
            "tt.income_calculation": "the income calculation of your application for social assistance",
            "tt.service_guidance": "guiding you to the services and benefits that suit you",
            "tt.forwarding": "passing your application and Kela's decision on to the wellbeing services county",
            "tt.social_services_statement": "the social services' statement to Kela",
            "tt.supplementary_assistance": "your matter of supplementary social assistance",
            "tt.preventive_assistance": "your matter of preventive social assistance",
            "sh.referral": "contacting the social services of the wellbeing services county "
                           "(section 35 of the Social Welfare Act)",
            "sh.multidisciplinary": "cooperation between Kela and the wellbeing services county in your matter",
            "ls.notification": "a child welfare notification",
        },
        "role": {"advisor": "service advisors", "expert": "benefits handlers and other named specialists",
                 "social_worker": "social workers", "privacy_officer": "data protection officers",
                 "admin": "administrators"},
        "grantor": {"self": "you", "guardian": "your guardian", "legal_representative": "your legal representative"},
        "method": {"written": "in writing", "oral": "orally, in person", "e_service": "in the online service"},
        "status": {"active": "in force", "suspended": "paused", "withdrawn": "withdrawn", "expired": "ended"},
    },
}

_TEXT: Final = {
    "fi": {
        "title": "SUOSTUMUS TIETOJEN LUOVUTTAMISEEN – KUITTI ASIAKKAALLE",
        "grantor": "Suostumuksen antoi", "method": "Suostumus annettiin", "witness": "Suullisen suostumuksen todistaja",
        "evidence": "Merkintä suostumuksesta", "recorded": "Kirjattu",
        "what": "Mitä tietoja saa luovuttaa", "from": "Kuka luovuttaa", "to": "Kenelle",
        "only": "vain", "named": "vain nimetyt työntekijät", "why": "Mihin tarkoitukseen",
        "valid": "Voimassa", "status": "Tila nyt",
        "rights": "Oikeutesi",
        "withdraw": "Voit peruuttaa suostumuksesi milloin tahansa. Ilmoita peruutuksesta jollekin näistä: {orgs}. "
                    "Peruutuksen jälkeen "
                    "tietoja ei enää luovuteta tämän suostumuksen perusteella; ennen peruutusta luovutettuja tietoja "
                    "se ei palauta.",
        "refuse": "Jos et anna suostumusta tai peruutat sen, näitä tietoja ei luovuteta tämän suostumuksen "
                  "perusteella. Suostumuksen antaminen on vapaaehtoista. Asiasi käsitellään silti, mutta sinua "
                  "voidaan pyytää toimittamaan tarvittavat tiedot itse, ja käsittely voi kestää kauemmin. Ilman "
                  "suostumusta tietoja luovutetaan vain, jos laki sitä edellyttää tai sen sallii.",
        "controllers": "Rekisterinpitäjät ja yhteystiedot",
        "address": "Osoite", "phone": "Puhelin", "privacy": "Tietosuojavastaava", "web": "Verkossa",
        "receipt": "Kuitin tunniste", "version": "versio", "and": "tai", "or": "tai",
    },
    "sv": {
        "title": "SAMTYCKE TILL UTLÄMNANDE AV UPPGIFTER – KVITTO TILL KUNDEN",
        "grantor": "Samtycket gavs av", "method": "Samtycket gavs", "witness": "Vittne till det muntliga samtycket",
        "evidence": "Anteckning om samtycket", "recorded": "Registrerat",
        "what": "Vilka uppgifter får lämnas ut", "from": "Vem lämnar ut", "to": "Till vem",
        "only": "endast", "named": "endast namngivna anställda", "why": "För vilket ändamål",
        "valid": "Giltigt", "status": "Status nu",
        "rights": "Dina rättigheter",
        "withdraw": "Du kan återkalla ditt samtycke när som helst genom att meddela {orgs}. Efter återkallelsen "
                    "lämnas uppgifterna inte längre ut med stöd av detta samtycke; uppgifter som lämnats ut före "
                    "återkallelsen påverkas inte.",
        "refuse": "Om du inte ger ditt samtycke eller återkallar det lämnas dessa uppgifter inte ut med stöd av "
                  "detta samtycke. Det är frivilligt att ge samtycke. Ditt ärende behandlas ändå, men du kan bli "
                  "ombedd att själv lämna in de uppgifter som behövs, och behandlingen kan ta längre tid. Utan "
                  "samtycke lämnas uppgifter ut endast om lagen kräver eller tillåter det.",
        "controllers": "Personuppgiftsansvariga och kontaktuppgifter",
        "address": "Adress", "phone": "Telefon", "privacy": "Dataskyddsombud", "web": "På webben",
        "receipt": "Kvittots identifierare", "version": "version", "and": "eller", "or": "eller",
    },
    "en": {
        "title": "CONSENT TO DISCLOSE INFORMATION – RECEIPT FOR THE CLIENT",
        "grantor": "Consent given by", "method": "Consent given", "witness": "Oral consent witnessed by",
        "evidence": "Where the consent is recorded", "recorded": "Recorded",
        "what": "What information may be disclosed", "from": "Who discloses it", "to": "To whom",
        "only": "only", "named": "only named employees", "why": "For what purpose",
        "valid": "Valid", "status": "Now",
        "rights": "Your rights",
        "withdraw": "You may withdraw your consent at any time by telling {orgs}. After that, the information is "
                    "no longer disclosed on the basis of this consent; what was disclosed before you withdrew it "
                    "is not undone.",
        "refuse": "If you do not give consent, or withdraw it, this information is not disclosed on the basis of "
                  "this consent. Giving consent is voluntary. Your matter is still dealt with, but you may be asked "
                  "to provide the information yourself, and it may take longer. Without consent, information is "
                  "disclosed only where the law requires or allows it.",
        "controllers": "Controllers and how to reach them",
        "address": "Address", "phone": "Telephone", "privacy": "Data protection officer",
        "web": "Online", "receipt": "Receipt id", "version": "version", "and": "or", "or": "or",
    },
}


def _date(value: str | None) -> str:
    if not value:
        return "–"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(HELSINKI)
    return f"{moment.day}.{moment.month}.{moment.year}"


def _name(org: str, controllers: Mapping[str, Controller], lang: str) -> str:
    controller = controllers.get(org)
    return controller.name[lang] if controller else org  # start-up refuses an org without one


def _join(names: list[str], word: str) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {word} " + names[-1]


def receipt_text(consent: dict[str, Any], lang: str, controllers: Mapping[str, Controller]) -> str:
    """The receipt for one consent version in ``lang`` (fi, sv or en)."""
    lang = lang if lang in _TEXT else "fi"
    t, plain = _TEXT[lang], PLAIN[lang]

    def label(kind: str, code: str) -> str:
        return plain[kind].get(code, code)

    discloser = consent.get("disclosing_org")
    recipients = list(consent["recipient_orgs"])
    parties = list(dict.fromkeys([*([discloser] if discloser else []), *recipients]))
    to = _join([_name(o, controllers, lang) for o in recipients], t["and"])
    if consent["recipient_roles"]:
        to += f" ({t['only']} {_join([label('role', r) for r in consent['recipient_roles']], t['and'])})"
    if consent["recipient_users"]:
        to += f" ({t['named']})"
    lines = [
        t["title"],
        "",
        f"{t['grantor']}: {label('grantor', consent['grantor'])}",
        f"{t['method']}: {label('method', consent['method'])}",
    ]
    if consent.get("witnessed_by"):
        lines.append(f"{t['witness']}: {consent['witnessed_by']}")
    if consent.get("evidence_ref"):
        lines.append(f"{t['evidence']}: {consent['evidence_ref']}")
    lines += [
        f"{t['recorded']}: {_date(consent['created_at'])}",
        "",
        f"{t['what']}:",
        *[f"  – {label('category', c)}" for c in consent["categories"]],
        f"{t['from']}: {_name(discloser, controllers, lang) if discloser else '–'}",
        f"{t['to']}: {to}",
        f"{t['why']}: {_join([label('purpose', p) for p in consent['purposes']], t['and'])}",
        f"{t['valid']}: {_date(consent['valid_from'])} – {_date(consent['valid_until'])}",
        f"{t['status']}: {label('status', consent['status'])}",
        "",
        t["rights"],
        t["withdraw"].format(orgs=_join([_name(o, controllers, lang) for o in parties], t["or"])),
        t["refuse"],
        "",
        t["controllers"],
    ]
    for org in parties:
        lines.append(_name(org, controllers, lang))
        controller = controllers.get(org)
        if controller is not None:
            lines += [f"  {t['address']}: {controller.address}", f"  {t['phone']}: {controller.phone}",
                      f"  {t['privacy']}: {controller.privacy_contact}",
                      f"  {t['web']}: {controller.web}"]
    lines += ["", f"{t['receipt']}: {consent['id']}, {t['version']} {consent['version']}", ""]
    return "\n".join(lines)
