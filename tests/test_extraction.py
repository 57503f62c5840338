"""Proxies written as text: every answer format extraction APIs and pool imports use."""
import pytest

from browserfarm.net.extraction import BadLine, parse_line, parse_text
from browserfarm.net.geo import follow_ip, language_for
from browserfarm.net.ipcheck import IpInfo
from browserfarm.net.proxy import ProxySettings


@pytest.mark.parametrize("line, expected", [
    ("1.2.3.4:1080", ProxySettings("socks5", "1.2.3.4", 1080)),
    ("proxy.example.com:8080:bob:s3:cret", ProxySettings("socks5", "proxy.example.com",
                                                          8080, "bob", "s3:cret")),
    ("bob:pw@1.2.3.4:1080", ProxySettings("socks5", "1.2.3.4", 1080, "bob", "pw")),
    ("http://bob:p%40ss@10.0.0.1:3128", ProxySettings("http", "10.0.0.1", 3128, "bob", "p@ss")),
    ("socks5h://h.example:1", ProxySettings("socks5", "h.example", 1)),
    ("https://[::1]:8443", ProxySettings("https", "::1", 8443)),
    ("  5.6.7.8:99  ", ProxySettings("socks5", "5.6.7.8", 99)),
])
def test_each_line_format(line, expected):
    assert parse_line(line, "socks5") == expected


def test_user_pass_first_only_when_the_format_says_so():
    line = "bob:pw:1.2.3.4:1080"
    assert parse_line(line, "http", "user:pass:host:port") == ProxySettings(
        "http", "1.2.3.4", 1080, "bob", "pw")
    with pytest.raises(BadLine):
        parse_line(line, "http")  # read as host "bob", port "pw"


@pytest.mark.parametrize("line, reason", [
    ("", "empty"), ("justahost", "not host:port"), ("1.2.3.4:99999", "port"),
    ("1.2.3.4:abc", "port"), ("bad host!:80", "not a host"), ("ftp://h:21", "scheme"),
    ("http://h", "needs a host and a port"), ("<html>", "not host:port"),
])
def test_bad_lines_say_why(line, reason):
    with pytest.raises(BadLine, match=reason):
        parse_line(line, "socks5")


def test_json_answers_with_the_usual_keys():
    answers = [
        '{"code": 0, "data": [{"ip": "1.2.3.4", "port": 1080, "user": "u", "pass": "p"}]}',
        '{"data": {"proxy": "u:p@1.2.3.4:1080"}}',
        '[{"host": "1.2.3.4", "port": "1080", "username": "u", "password": "p"}]',
        '{"proxies": ["1.2.3.4:1080:u:p"]}',
        '{"server": "1.2.3.4:1080", "login": "u", "pwd": "p"}',
    ]
    for answer in answers:
        parsed = parse_text(answer, "socks5")
        assert parsed[0].proxy == ProxySettings("socks5", "1.2.3.4", 1080, "u", "p"), answer


def test_json_type_key_sets_the_proxy_type():
    parsed = parse_text('{"ip": "1.2.3.4", "port": 80, "protocol": "http"}', "socks5")
    assert parsed[0].proxy.type == "http"


def test_lines_are_numbered_and_bad_ones_reported():
    parsed = parse_text("1.2.3.4:1\n\nnonsense\n5.6.7.8:2:u:p\n", "socks5")
    assert [(p.number, p.proxy is not None) for p in parsed] == [(1, True), (3, False),
                                                                  (4, True)]
    assert parsed[1].error


def test_geo_follows_the_ip_only_where_asked():
    info = IpInfo(ip="192.0.2.1", country_code="DE", timezone="Europe/Berlin",
                  latitude=52.52, longitude=13.405)
    fingerprint = {"isIpCreateTimeZone": True, "isIpCreatePosition": True,
                   "isIpCreateLanguage": True, "isIpCreateDisplayLanguage": False,
                   "timeZone": "America/New_York", "languages": "en-US",
                   "displayLanguages": "en-US", "os": "Win32"}
    followed = follow_ip(fingerprint, info)
    assert followed["timeZone"] == "Europe/Berlin"
    assert followed["timeZoneOffset"] in (60, 120)
    assert (followed["lat"], followed["lng"]) == (52.52, 13.405)
    assert followed["languages"] == "de-DE,de,en-US,en"
    assert followed["displayLanguages"] == "en-US" and followed["os"] == "Win32"
    assert follow_ip({"timeZone": "Asia/Tokyo"}, info) == {"timeZone": "Asia/Tokyo"}


def test_language_of_unknown_countries_is_english():
    assert language_for("") == "en-US,en"
    assert language_for("gb") == "en-GB,en"
