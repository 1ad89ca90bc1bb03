"""What the Python interop scripts share: token and client storage for the SDK's OAuth provider,
and reading a page's hidden form fields."""

import html
import re

from mcp.shared.auth import OAuthClientInformationFull, OAuthToken


def hidden_inputs(page):
    """The hidden inputs of an HTML page, by name."""
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


class Storage:
    """The SDK's token storage, in memory."""

    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull):
        self.client = client_info
