"""The log extract (lokitieto-ote, loggutdrag) a privacy officer hands to a client: who used or
received the client's data, when, what they did and on what basis, in plain Finnish or Swedish
with no internal code (laki sosiaali- ja terveydenhuollon asiakastietojen käsittelystä 703/2023
§ 11: the client's right to the log data of their own data, older than two years only for a
special reason).

It is rendered from the same audit records as the client access report (services/audit.py), as
far as they concern the officer's organisation. Only what happened is listed: an access or a
disclosure the policy refused did not disclose anything and is left out. Staff are named as the
directory knows them, with organisation and role (703/2023 § 11 speaks of who used the data);
where the directory has no name, the role stands alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from consult.model import secrecy

HELSINKI = ZoneInfo("Europe/Helsinki")
LANGUAGES: Final = ("fi", "sv")

_T: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "title": "LOKITIETO-OTE",
        "lead": "Tiedot siitä, kuka on käyttänyt asiakastietojasi tai kenelle niitä on luovutettu, milloin ja "
                "millä perusteella (laki sosiaali- ja terveydenhuollon asiakastietojen käsittelystä 703/2023, "
                "11 §).",
        "organisation": "Organisaatio, jonka lokista ote on laadittu",
        "period": "Ajanjakso", "generated": "Laadittu",
        "used": "Tietojesi käyttö", "disclosed": "Tietojesi luovutukset",
        "none": "Ei merkintöjä tältä ajanjaksolta.",
        "who": "Kuka", "what": "Mitä", "data": "Mitä tietoja", "to": "Kenelle", "basis": "Peruste",
        "truncated": "Ote on katkaistu: ajanjaksolla on enemmän merkintöjä kuin yhteen otteeseen mahtuu. "
                     "Pyydä lyhyemmän ajanjakson ote.",
        "older": "Yli kaksi vuotta vanhoja lokitietoja annetaan vain erityisestä syystä (703/2023, 11 §).",
        "scope": "Ote kattaa vain tämän organisaation lokin. Toisen organisaation käsittelystä saat tiedon "
                 "kyseiseltä organisaatiolta.",
        "at": "klo", "disclosure": "luovutti tietoja",
    },
    "sv": {
        "title": "LOGGUTDRAG",
        "lead": "Uppgifter om vem som har använt dina klientuppgifter eller till vem de har lämnats ut, när och på "
                "vilken grund (lagen om behandling av klientuppgifter inom social- och hälsovården 703/2023, "
                "11 §).",
        "organisation": "Organisation vars logg utdraget gäller",
        "period": "Period", "generated": "Upprättat",
        "used": "Användning av dina uppgifter", "disclosed": "Utlämnanden av dina uppgifter",
        "none": "Inga anteckningar under perioden.",
        "who": "Vem", "what": "Vad", "data": "Vilka uppgifter", "to": "Till vem", "basis": "Grund",
        "truncated": "Utdraget är avkortat: perioden har fler anteckningar än ett utdrag rymmer. "
                     "Begär ett utdrag för en kortare period.",
        "older": "Logguppgifter som är äldre än två år lämnas ut endast av särskilda skäl (703/2023, 11 §).",
        "scope": "Utdraget omfattar endast denna organisations logg. Om en annan organisations behandling får du "
                 "uppgifter av den organisationen.",
        "at": "kl.", "disclosure": "lämnade ut uppgifter",
    },
}

ROLES: Final[dict[str, dict[str, str]]] = {
    "fi": {"advisor": "palveluneuvoja", "expert": "etuuskäsittelijä tai muu nimetty asiantuntija",
           "social_worker": "sosiaalityöntekijä", "privacy_officer": "tietosuojavastaava",
           "admin": "pääkäyttäjä"},
    "sv": {"advisor": "servicerådgivare", "expert": "förmånshandläggare eller annan utsedd sakkunnig",
           "social_worker": "socialarbetare", "privacy_officer": "dataskyddsansvarig",
           "admin": "huvudanvändare"},
}

#: What an audited action means to the client. An action not named here is said generically.
ACTIONS: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "client.register": "kirjasi sinut asiakkaaksi palveluun",
        "client.lookup": "haki tietosi palvelusta",
        "client.merge": "yhdisti kaksi sinua koskevaa kirjausta",
        "consultation.create": "avasi sinua koskevan neuvottelun toisen organisaation kanssa",
        "consultation.read": "avasi sinua koskevan neuvottelun",
        "consultation.list": "näki sinua koskevan neuvottelun luettelossa",
        "consultation.claim": "otti sinua koskevan neuvottelun hoitaakseen",
        "consultation.close": "päätti sinua koskevan neuvottelun",
        "consultation.participant.add": "lisäsi henkilön sinua koskevaan neuvotteluun",
        "message.create": "kirjoitti viestin sinua koskevaan neuvotteluun",
        "messages.read": "luki sinua koskevan neuvottelun viestit",
        "message.preview": "tarkisti viestin ennen lähettämistä",
        "attachment.upload": "lisäsi liitteen",
        "attachment.download": "avasi liitteen",
        "consent.create": "kirjasi suostumuksesi",
        "consent.read": "luki suostumuksesi",
        "consent.list": "luki suostumuksesi",
        "consent.receipt": "tulosti kuitin suostumuksestasi",
        "consent.withdraw": "kirjasi suostumuksesi peruutuksen",
        "consent.suspend": "keskeytti suostumuksesi",
        "consent.resume": "palautti suostumuksesi voimaan",
        "prohibition.create": "kirjasi luovutuskieltosi",
        "prohibition.list": "luki luovutuskieltosi",
        "prohibition.revoke": "kirjasi luovutuskieltosi päättymisen",
        "retention.shred": "hävitti sinua koskevan neuvottelun sisällön säilytysajan päätyttyä",
        "break_glass": "avasi sinua koskevan neuvottelun sisällön valvontaa varten kirjallisin perustein",
        "audit.access_report": "laati selvityksen tietojesi käsittelystä",
        "audit.log_extract": "laati lokitieto-otteen",
        "audit.query": "tarkasti lokia valvontaa varten",
        "audit.disclosures": "tarkasti luovutuksia valvontaa varten",
        "audit.export": "vei lokitietoja valvontaa varten",
    },
    "sv": {
        "client.register": "registrerade dig som klient i tjänsten",
        "client.lookup": "sökte dina uppgifter i tjänsten",
        "client.merge": "förenade två anteckningar om dig",
        "consultation.create": "öppnade en konsultation om dig med en annan organisation",
        "consultation.read": "öppnade en konsultation om dig",
        "consultation.list": "såg en konsultation om dig i en förteckning",
        "consultation.claim": "tog hand om en konsultation om dig",
        "consultation.close": "avslutade en konsultation om dig",
        "consultation.participant.add": "lade till en person i en konsultation om dig",
        "message.create": "skrev ett meddelande i en konsultation om dig",
        "messages.read": "läste meddelandena i en konsultation om dig",
        "message.preview": "kontrollerade ett meddelande innan det skickades",
        "attachment.upload": "lade till en bilaga",
        "attachment.download": "öppnade en bilaga",
        "consent.create": "registrerade ditt samtycke",
        "consent.read": "läste ditt samtycke",
        "consent.list": "läste ditt samtycke",
        "consent.receipt": "skrev ut ett kvitto på ditt samtycke",
        "consent.withdraw": "registrerade att du återkallade ditt samtycke",
        "consent.suspend": "avbröt ditt samtycke",
        "consent.resume": "satte ditt samtycke i kraft igen",
        "prohibition.create": "registrerade ditt utlämnandeförbud",
        "prohibition.list": "läste ditt utlämnandeförbud",
        "prohibition.revoke": "registrerade att ditt utlämnandeförbud upphörde",
        "retention.shred": "förstörde innehållet i en konsultation om dig när bevarandetiden gått ut",
        "break_glass": "öppnade innehållet i en konsultation om dig för tillsyn med skriftlig motivering",
        "audit.access_report": "upprättade en redogörelse för behandlingen av dina uppgifter",
        "audit.log_extract": "upprättade ett loggutdrag",
        "audit.query": "granskade loggen för tillsyn",
        "audit.disclosures": "granskade utlämnanden för tillsyn",
        "audit.export": "exporterade logguppgifter för tillsyn",
    },
}
_ACTION_OTHER: Final = {"fi": "käsitteli tietojasi", "sv": "behandlade dina uppgifter"}

CATEGORIES: Final[dict[str, dict[str, str]]] = {
    "fi": {
        "application.status": "hakemuksesi käsittelyvaihe", "application.content": "hakemuksesi tiedot",
        "application.attachment": "hakemuksen liitteet", "decision.period": "päätöksesi voimassaoloaika",
        "decision.content": "hyvinvointialueen päätöksen sisältö",
        "decision.basic": "Kelan perustoimeentulotukipäätös",
        "decision.supplementary": "täydentävää toimeentulotukea koskeva päätös",
        "decision.preventive": "ehkäisevää toimeentulotukea koskeva päätös",
        "income.kela_benefit": "Kelan maksamat etuudet", "income.other": "muut tulot",
        "population_register": "väestötiedot (osoite ja kotitalous)",
        "social_work.assessment": "sosiaalityön arvio", "social_work.statement": "sosiaalihuollon lausunto",
        "service_need.referral": "yhteydenotto sosiaalihuoltoon", "health": "terveystiedot",
        "debt": "velat ja ulosotto", "housing.risk": "asunnottomuuden tai häädön uhka",
        "child_welfare": "lastensuojelun tiedot", "identity.hetu": "henkilötunnus",
    },
    "sv": {
        "application.status": "hur långt din ansökan har kommit", "application.content": "uppgifterna i din ansökan",
        "application.attachment": "bilagor till ansökan", "decision.period": "hur länge ditt beslut gäller",
        "decision.content": "innehållet i välfärdsområdets beslut",
        "decision.basic": "FPA:s beslut om grundläggande utkomststöd",
        "decision.supplementary": "beslut om kompletterande utkomststöd",
        "decision.preventive": "beslut om förebyggande utkomststöd",
        "income.kela_benefit": "förmåner som FPA betalar", "income.other": "andra inkomster",
        "population_register": "befolkningsuppgifter (adress och hushåll)",
        "social_work.assessment": "socialarbetets bedömning", "social_work.statement": "socialvårdens utlåtande",
        "service_need.referral": "kontakt med socialvården", "health": "hälsouppgifter",
        "debt": "skulder och utsökning", "housing.risk": "hot om bostadslöshet eller vräkning",
        "child_welfare": "uppgifter inom barnskyddet", "identity.hetu": "personbeteckning",
    },
}

_BASIS: Final = {
    "fi": {"statute": "laki", "notwithstanding": "salassapidon estämättä, julkisuuslaki 621/1999 29 § 1 mom. 1 k.",
           "consent": "suostumuksesi", "internal": "organisaation oma tehtävä",
           "privacy_audit": "lokin valvonta (tietosuojavastaavan tehtävä)", "other": "organisaation tehtävä"},
    "sv": {"statute": "lag", "notwithstanding": "trots sekretessen, offentlighetslagen 621/1999 29 § 1 mom. 1 p.",
           "consent": "ditt samtycke", "internal": "organisationens egen uppgift",
           "privacy_audit": "tillsyn över loggen (dataskyddsansvarigs uppgift)", "other": "organisationens uppgift"},
}


@dataclass(frozen=True, slots=True)
class ExtractEntry:
    """One line of the extract, in words: when, who (name, role, organisation), what, which data,
    to whom (a disclosure), on what basis."""

    at: str
    who: str
    what: str
    data: str | None
    to: str | None
    basis: str

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "who": self.who, "what": self.what, "data": self.data, "to": self.to,
                "basis": self.basis}


@dataclass(frozen=True, slots=True)
class LogExtract:
    lang: str
    organisation: str
    period: tuple[str, str]
    generated: str
    used: tuple[ExtractEntry, ...]
    disclosed: tuple[ExtractEntry, ...]
    truncated: bool
    text: str


def render(
    rows: Sequence[dict[str, Any]], *, lang: str, org: str, org_names: Mapping[str, str],
    staff_names: Mapping[str, str], since: datetime, until: datetime, now: datetime,
    citation: Callable[[str], str | None], disclosure_actions: frozenset[str], truncated: bool,
) -> LogExtract:
    """The extract of ``rows`` (one client's audit records of ``org``, oldest first) in ``lang``.
    ``citation`` gives a rule's statute citation by rule id (None when unknown)."""
    if lang not in LANGUAGES:
        raise ValueError(f"log extract language {lang!r}")
    t = _T[lang]
    happened = [r for r in rows if r["outcome"] == "permit"]
    used, disclosed = [], []
    for r in happened:
        who = _person(lang, r["actor_id"], r["actor_role"], r["actor_org"], org_names, staff_names)
        data = ", ".join(CATEGORIES[lang].get(c, c) for c in (r["categories"] or ())) or None
        basis = _basis(lang, r, citation)
        if r["action"] in disclosure_actions:
            to = _person(lang, r["subject_user"], r["recipient_role"], r["recipient_org"], org_names, staff_names)
            what = t["disclosure"]
            disclosed.append(ExtractEntry(_when(lang, r["at"]), who, what, data, to, basis))
        else:
            what = ACTIONS[lang].get(r["action"], _ACTION_OTHER[lang])
            used.append(ExtractEntry(_when(lang, r["at"]), who, what, data, None, basis))
    name = org_names.get(org, org)
    period = (_day(since), _day(until))
    generated = _when(lang, now)
    lines = [t["title"], "", t["lead"], "",
             f"{t['organisation']}: {name}",
             f"{t['period']}: {period[0]} – {period[1]}",
             f"{t['generated']}: {generated}", ""]
    for heading, entries in ((t["used"], used), (t["disclosed"], disclosed)):
        lines += [heading.upper(), ""]
        if not entries:
            lines += [t["none"], ""]
        for e in entries:
            lines.append(f"{e.at}  {e.who}")
            lines.append(f"    {t['what']}: {e.what}")
            if e.to:
                lines.append(f"    {t['to']}: {e.to}")
            if e.data:
                lines.append(f"    {t['data']}: {e.data}")
            lines += [f"    {t['basis']}: {e.basis}", ""]
    if truncated:
        lines += [t["truncated"], ""]
    lines += [t["scope"], t["older"]]
    return LogExtract(lang=lang, organisation=name, period=period, generated=generated, used=tuple(used),
                      disclosed=tuple(disclosed), truncated=truncated,
                      text=secrecy.marked("\n".join(lines), lang))


def _person(lang: str, user_id: str | None, role: str | None, org: str | None,
            org_names: Mapping[str, str], staff_names: Mapping[str, str]) -> str:
    parts = [staff_names[user_id]] if user_id and user_id in staff_names else []
    if role:
        parts.append(ROLES[lang].get(role, role))
    if org:
        parts.append(org_names.get(org, org))
    return ", ".join(parts)


def _basis(lang: str, r: dict[str, Any], citation: Callable[[str], str | None]) -> str:
    words = _BASIS[lang]
    basis = r["basis"] or ""
    if basis.startswith("consent:") or r["consent_id"]:
        return words["consent"]
    if basis.startswith("statute:"):
        cited = citation(basis.removeprefix("statute:")) or citation(r["rule_id"] or "")
        act = _act(cited) if cited else None
        return f"{words['statute']}: {act} ({words['notwithstanding']})" if act else words["statute"]
    if r["purpose"] == "privacy_audit":
        return words["privacy_audit"]
    if basis.startswith("internal:"):
        return words["internal"]
    return words["other"]


def _act(citation: str) -> str | None:
    """The act a policy citation names first ("Laki toimeentulotuesta 1412/1997"), without the
    policy's working notes for the lawyer that follow it."""
    act = re.split(r"[,;(]", citation, maxsplit=1)[0].strip()
    return act or None


def plain_name(name: str) -> str:
    """An organisation's name as the policy gives it, without a gloss in parentheses at its end
    ("Vantaan ja Keravan hyvinvointialue (Vantaa and Kerava wellbeing services county)")."""
    return re.sub(r"\s*\([^()]*\)$", "", name) or name


def _local(at: datetime) -> datetime:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(HELSINKI)


def _day(at: datetime) -> str:
    d = _local(at)
    return f"{d.day}.{d.month}.{d.year}"


def _when(lang: str, at: datetime) -> str:
    d = _local(at)
    return f"{d.day}.{d.month}.{d.year} {_T[lang]['at']} {d.hour:02d}.{d.minute:02d}"
