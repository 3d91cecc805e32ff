"""An image name and tag to the :class:`ImageSpec` to build: one rule for
the manifest function and the CLI."""

from __future__ import annotations

from nixspec.names import parse_name, validate_tag
from nixspec.sources import SourceResolver
from nixspec.spec import ImageSpec
from registry.settings import Settings


def resolver_for(settings: Settings) -> SourceResolver:
    return SourceResolver(
        settings.source, ttl_s=settings.source_ttl_s, channel_base=settings.channel_url
    )


def spec_for(settings: Settings, resolver: SourceResolver, name: str, tag: str) -> ImageSpec:
    """Raises ``RegistryError`` (NAME_INVALID, MANIFEST_UNKNOWN, DENIED, UNAVAILABLE)."""
    parsed = parse_name(
        name, max_length=settings.max_name_length, max_packages=settings.max_packages
    )
    validate_tag(tag)
    settings.limits.check_packages(parsed.packages)  # DENIED before any Nix call
    return ImageSpec(name, tag, parsed.packages, parsed.arch, resolver.resolve(tag))
