"""Built-in IP-check services: ip-api, ipinfo, ipapi.co. Each parses its service's
own JSON answer into an ``IpInfo``."""
from browserfarm import hookimpl
from browserfarm.ipcheck import BadAnswer, IpCheckService, IpInfo, _float


class IpApi(IpCheckService):
    """ip-api.com's free JSON endpoint."""
    name = "ip-api"
    base_url = "http://ip-api.com/json/"

    @classmethod
    def parse(cls, payload):
        if payload.get("status") != "success" or not payload.get("query"):
            raise BadAnswer(payload.get("message") or "ip-api answered without an IP")
        return IpInfo(ip=payload["query"], country=payload.get("country", ""),
                      country_code=payload.get("countryCode", ""),
                      region=payload.get("regionName", ""), city=payload.get("city", ""),
                      timezone=payload.get("timezone", ""), latitude=_float(payload.get("lat")),
                      longitude=_float(payload.get("lon")), isp=payload.get("isp", ""))


class IpInfoIo(IpCheckService):
    """ipinfo.io: location as one "lat,lon" string."""
    name = "ipinfo"
    base_url = "https://ipinfo.io/json"

    @classmethod
    def parse(cls, payload):
        if not payload.get("ip"):
            raise BadAnswer("ipinfo answered without an IP")
        lat, _, lon = (payload.get("loc") or "").partition(",")
        return IpInfo(ip=payload["ip"], country=payload.get("country", ""),
                      country_code=payload.get("country", ""), region=payload.get("region", ""),
                      city=payload.get("city", ""), timezone=payload.get("timezone", ""),
                      latitude=_float(lat), longitude=_float(lon), isp=payload.get("org", ""))


class IpapiCo(IpCheckService):
    """ipapi.co's JSON endpoint."""
    name = "ipapi.co"
    base_url = "https://ipapi.co/json/"

    @classmethod
    def parse(cls, payload):
        if payload.get("error") or not payload.get("ip"):
            raise BadAnswer(payload.get("reason") or "ipapi.co answered without an IP")
        return IpInfo(ip=payload["ip"], country=payload.get("country_name", ""),
                      country_code=payload.get("country_code", ""),
                      region=payload.get("region", ""), city=payload.get("city", ""),
                      timezone=payload.get("timezone", ""),
                      latitude=_float(payload.get("latitude")),
                      longitude=_float(payload.get("longitude")), isp=payload.get("org", ""))


@hookimpl
def browserfarm_register_ip_check_services(register):
    for cls in (IpApi, IpInfoIo, IpapiCo):
        register(cls)
