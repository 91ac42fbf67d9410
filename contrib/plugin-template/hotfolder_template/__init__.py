"""An example hotfolder plugin: the ``template.sepia`` operation.

Copy this folder, rename the package and the entry point, and add your operations: the steps
are in docs/plugins.md, "Quick start".
"""

from __future__ import annotations

from PIL import Image, ImageOps
from pydantic import Field

import hotfolder


class Sepia(hotfolder.Operation):
    """Tone the image in sepia; ``strength`` 0 keeps it as it is, 1 is full sepia."""

    name = "template.sepia"
    summary = "tone an image in sepia"

    class Params(hotfolder.Params):
        strength: float = Field(default=1.0, ge=0.0, le=1.0)

    def run(self, context: hotfolder.StepContext, image: hotfolder.Artifact) -> hotfolder.Artifact:
        source = image.image.convert("RGB")
        toned = ImageOps.colorize(ImageOps.grayscale(source), black="#2e1c0c", white="#fff3dc")
        return image.with_image(Image.blend(source, toned, self.params.strength))


@hotfolder.hookimpl
def hotfolder_register_operations(register):
    register(Sepia)
