"""What the Track function shows a person: the pixel and three small HTML pages."""

from __future__ import annotations

from html import escape

__all__ = [
    "PAGE_HEADERS",
    "PIXEL_GIF",
    "invalid_link_page",
    "unsubscribe_confirm_page",
    "unsubscribed_page",
]

# A 1x1 GIF whose only pixel is transparent (43 bytes).
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

# The pages hold a personal link: not cached, not framed, no referrer, no scripts.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
line-height:1.5;color:#222}}button{{font:inherit;padding:.5rem 1.25rem;cursor:pointer}}</style>
</head><body>
<h1>{title}</h1>
{content}
</body></html>
"""


def _page(title: str, content: str) -> str:
    return _PAGE.format(title=escape(title), content=content)


def unsubscribe_confirm_page(email: str) -> str:
    # The form posts the body RFC 8058 one-click clients send, so both take one path.
    return _page(
        "Unsubscribe",
        f"<p>Stop sending these emails to <strong>{escape(email)}</strong>?</p>\n"
        '<form method="post" action="">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


def unsubscribed_page(email: str) -> str:
    return _page(
        "You are unsubscribed",
        f"<p><strong>{escape(email)}</strong> will not receive these emails any more.</p>",
    )


def invalid_link_page() -> str:
    return _page(
        "This link does not work",
        "<p>The link is incomplete or has been changed. Please use the link from the email "
        "exactly as it arrived.</p>",
    )
