"""The HTTP entrypoint: aiohttp app, JSON API, pages and problem details."""
