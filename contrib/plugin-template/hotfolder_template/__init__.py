"""An example hotfolder plugin: the ``template.sepia`` operation, and settings of its own.

Copy this folder, rename the package and the entry point, and add your operations: the steps
are in docs/plugins.md, "Quick start".
"""

from __future__ import annotations

from PIL import Image, ImageOps
from pydantic import Field

import hotfolder

#: A colour as ``#rrggbb``.
HEX = r"^#[0-9a-fA-F]{6}$"


class Settings(hotfolder.PluginSettings):
    """The plugin's own table, named after its entry point: ``[plugins.template]``."""

    #: The tones sepia maps black and white to.
    dark: str = Field(default="#2e1c0c", pattern=HEX)
    light: str = Field(default="#fff3dc", pattern=HEX)


class Sepia(hotfolder.Operation):
    """Tone the image in sepia; ``strength`` 0 keeps it as it is, 1 is full sepia."""

    name = "template.sepia"
    summary = "tone an image in sepia"

    class Params(hotfolder.Params):
        strength: float = Field(default=1.0, ge=0.0, le=1.0)

    def run(self, context: hotfolder.StepContext, image: hotfolder.Artifact) -> hotfolder.Artifact:
        tones = context.runtime.plugin_settings(Settings) if context else Settings()
        source = image.image.convert("RGB")
        toned = ImageOps.colorize(ImageOps.grayscale(source), black=tones.dark, white=tones.light)
        return image.with_image(Image.blend(source, toned, self.params.strength))


@hotfolder.hookimpl
def hotfolder_plugin_settings():
    return Settings


@hotfolder.hookimpl
def hotfolder_register_operations(register):
    register(Sepia)
