"""Built-in IP-check services: ip-api, ipinfo, ipapi.co. Each parses its service's
own JSON answer into an ``IpInfo``."""
from browserfarm.pluginapi import (BadAnswer, IpCheckService, IpInfo, as_float, as_text,
                                   hookimpl)


class IpApi(IpCheckService):
    """ip-api.com's free JSON endpoint."""
    name = "ip-api"
    base_url = "http://ip-api.com/json/"

    @classmethod
    def parse(cls, payload):
        if payload.get("status") != "success" or not payload.get("query"):
            raise BadAnswer(payload.get("message") or "ip-api answered without an IP")
        return IpInfo(ip=as_text(payload["query"]), country=as_text(payload.get("country")),
                      country_code=as_text(payload.get("countryCode")),
                      region=as_text(payload.get("regionName")), city=as_text(payload.get("city")),
                      timezone=as_text(payload.get("timezone")), latitude=as_float(payload.get("lat")),
                      longitude=as_float(payload.get("lon")), isp=as_text(payload.get("isp")))


class IpInfoIo(IpCheckService):
    """ipinfo.io: location as one "lat,lon" string."""
    name = "ipinfo"
    base_url = "https://ipinfo.io/json"

    @classmethod
    def parse(cls, payload):
        if not payload.get("ip"):
            raise BadAnswer("ipinfo answered without an IP")
        lat, _, lon = as_text(payload.get("loc")).partition(",")
        return IpInfo(ip=as_text(payload["ip"]), country=as_text(payload.get("country")),
                      country_code=as_text(payload.get("country")), region=as_text(payload.get("region")),
                      city=as_text(payload.get("city")), timezone=as_text(payload.get("timezone")),
                      latitude=as_float(lat), longitude=as_float(lon), isp=as_text(payload.get("org")))


class IpapiCo(IpCheckService):
    """ipapi.co's JSON endpoint."""
    name = "ipapi.co"
    base_url = "https://ipapi.co/json/"

    @classmethod
    def parse(cls, payload):
        if payload.get("error") or not payload.get("ip"):
            raise BadAnswer(payload.get("reason") or "ipapi.co answered without an IP")
        return IpInfo(ip=as_text(payload["ip"]), country=as_text(payload.get("country_name")),
                      country_code=as_text(payload.get("country_code")),
                      region=as_text(payload.get("region")), city=as_text(payload.get("city")),
                      timezone=as_text(payload.get("timezone")),
                      latitude=as_float(payload.get("latitude")),
                      longitude=as_float(payload.get("longitude")), isp=as_text(payload.get("org")))


@hookimpl
def browserfarm_register_ip_check_services(register):
    for cls in (IpApi, IpInfoIo, IpapiCo):
        register(cls)
