"""Geo matching: a window set to follow its proxy's IP takes its time zone, language
and position from the IP check, so what the page sees agrees with where it comes from."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from browserfarm.net.ipcheck import IpInfo

# The main language of a country, as a browser there would first ask for.
LANGUAGE_OF_COUNTRY = {
    "AE": "ar-AE", "AR": "es-AR", "AT": "de-AT", "AU": "en-AU", "BE": "nl-BE",
    "BG": "bg-BG", "BR": "pt-BR", "CA": "en-CA", "CH": "de-CH", "CL": "es-CL",
    "CN": "zh-CN", "CO": "es-CO", "CZ": "cs-CZ", "DE": "de-DE", "DK": "da-DK",
    "EE": "et-EE", "EG": "ar-EG", "ES": "es-ES", "FI": "fi-FI", "FR": "fr-FR",
    "GB": "en-GB", "GR": "el-GR", "HK": "zh-HK", "HR": "hr-HR", "HU": "hu-HU",
    "ID": "id-ID", "IE": "en-IE", "IL": "he-IL", "IN": "en-IN", "IR": "fa-IR",
    "IT": "it-IT", "JP": "ja-JP", "KR": "ko-KR", "KZ": "ru-KZ", "LT": "lt-LT",
    "LV": "lv-LV", "MX": "es-MX", "MY": "ms-MY", "NG": "en-NG", "NL": "nl-NL",
    "NO": "nb-NO", "NZ": "en-NZ", "PE": "es-PE", "PH": "en-PH", "PK": "ur-PK",
    "PL": "pl-PL", "PT": "pt-PT", "RO": "ro-RO", "RS": "sr-RS", "RU": "ru-RU",
    "SA": "ar-SA", "SE": "sv-SE", "SG": "en-SG", "SI": "sl-SI", "SK": "sk-SK",
    "TH": "th-TH", "TR": "tr-TR", "TW": "zh-TW", "UA": "uk-UA", "US": "en-US",
    "VN": "vi-VN", "ZA": "en-ZA",
}


def language_for(country_code: str) -> str:
    """Accept-Language style list: the country's language, then English."""
    primary = LANGUAGE_OF_COUNTRY.get(str(country_code or "").upper(), "en-US")
    base = primary.split("-")[0]
    languages = [primary, base] if base != "en" else [primary, "en"]
    if base != "en":
        languages += ["en-US", "en"]
    return ",".join(dict.fromkeys(languages))


def follow_ip(fingerprint: dict, info: IpInfo) -> dict:
    """``fingerprint`` with the fields its ``isIpCreate*`` flags ask for taken from
    ``info``; the others as they were."""
    result = dict(fingerprint)
    if fingerprint.get("isIpCreateTimeZone") and info.timezone:
        try:
            offset = datetime.now(ZoneInfo(str(info.timezone))).utcoffset()
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            offset = None
        if offset is not None:
            result["timeZone"] = info.timezone
            result["timeZoneOffset"] = int(offset.total_seconds() // 60)
    if fingerprint.get("isIpCreatePosition") and info.latitude is not None \
            and info.longitude is not None:
        result["lat"], result["lng"] = info.latitude, info.longitude
    if fingerprint.get("isIpCreateLanguage"):
        result["languages"] = language_for(info.country_code)
    if fingerprint.get("isIpCreateDisplayLanguage"):
        result["displayLanguages"] = language_for(info.country_code).split(",")[0]
    return result
