"""The network side: proxy types\x27 core, the relay, SOCKS5, UDP, extraction, IP checks, geo."""
