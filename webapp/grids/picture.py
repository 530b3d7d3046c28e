"""A grid's picture: queued once every cell has ended, drawn from the cells' first images with labelled margins."""
from __future__ import annotations

import io
import logging

from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont
from sqlalchemy import select, update

from .. import lifecycle, services
from ..extensions import db
from ..prompting.grids import AXES
from ..tables import Generation, GenerationStatus, Grid, GridCell, Source

log = logging.getLogger(__name__)

MIN_CELL = 128  # cells are shown at least this big (the bundled model's 64×64 pictures are doubled)
LABEL = 18  # pixels of one line of label text
FINAL = {GenerationStatus.SUCCEEDED, GenerationStatus.FAILED, GenerationStatus.CANCELED}


def _shown(axis: dict, value) -> str:
    if axis["type"] == "prompt_sr":
        return str(value)
    return f"{AXES[axis['type']][0]}: {value:g}" if isinstance(value, float) else f"{AXES[axis['type']][0]}: {value}"


def layout(settings: dict, cell_width: int, cell_height: int) -> tuple[int, int, int, int, int, int]:
    """(picture width, height, shown cell width, height, left margin, top margin) of a grid's picture."""
    axes = settings["axes"]
    counts = [len(axis["values"]) for axis in axes] + [1, 1]
    scale = max(1, -(-MIN_CELL // max(cell_width, cell_height)))
    width, height = cell_width * scale, cell_height * scale
    left = 8 + 7 * max((len(_shown(axes[1], v)) for v in axes[1]["values"]), default=0) if len(axes) > 1 else 0
    top = LABEL + 8 + (LABEL + 8 if len(axes) > 2 else 0)
    block = left + counts[0] * width
    return (block * counts[2] + 8 * (counts[2] - 1), top + counts[1] * height, width, height, left, top)


def draw(settings: dict, pictures: list[PILImage.Image | None], cell_size: tuple[int, int]) -> PILImage.Image:
    """The grid: X across, Y down, one block per Z value side by side; a missing cell is grey with "failed"."""
    axes = settings["axes"]
    xs, ys, zs = ([axis["values"] for axis in axes] + [[None], [None]])[:3]
    total_width, total_height, width, height, left, top = layout(settings, *cell_size)
    canvas = PILImage.new("RGB", (total_width, total_height), "white")
    pen = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    block = left + len(xs) * width + 8
    for iz, z in enumerate(zs):
        origin = iz * block
        if len(axes) > 2:
            pen.text((origin + left, 4), _shown(axes[2], z), fill="black", font=font)
        for ix, x in enumerate(xs):
            pen.text((origin + left + ix * width + 4, top - LABEL - 2), _shown(axes[0], x), fill="black", font=font)
        for iy, y in enumerate(ys):
            if len(axes) > 1:
                pen.text((origin + 4, top + iy * height + height // 2 - 7), _shown(axes[1], y), fill="black", font=font)
            for ix in range(len(xs)):
                picture = pictures[ix + iy * len(xs) + iz * len(xs) * len(ys)]
                box = (origin + left + ix * width, top + iy * height)
                if picture is None:
                    pen.rectangle((*box, box[0] + width - 1, box[1] + height - 1), fill=(200, 200, 200))
                    pen.text((box[0] + 6, box[1] + height // 2 - 7), "failed", fill="black", font=font)
                else:
                    canvas.paste(picture.convert("RGB").resize((width, height), PILImage.Resampling.NEAREST), box)
    return canvas


def cell_pictures(grid: Grid) -> tuple[list[PILImage.Image | None], tuple[int, int]]:
    """Each cell's first image (None where it has none), and the cells' size."""
    pictures: list[PILImage.Image | None] = []
    size = None
    for cell in grid.cells:
        generation = cell.generation
        image = generation.images[0] if generation.status == GenerationStatus.SUCCEEDED and generation.images else None
        if image is None:
            pictures.append(None)
            continue
        with PILImage.open(io.BytesIO(services.storage().open(image.storage_key))) as opened:
            pictures.append(opened.convert("RGB"))
        size = size or (image.width, image.height)
    first = grid.cells[0].generation
    return pictures, size or (first.width, first.height)


def grid_of(generation_id: str) -> Grid | None:
    """The grid whose picture this generation makes."""
    return db.session.scalar(select(Grid).where(Grid.generation_id == generation_id))


def picture_for(generation: Generation) -> PILImage.Image:
    """Draw the picture of the grid that ``generation`` (``source = grid``) makes."""
    grid = grid_of(generation.id)
    if grid is None:
        raise LookupError(f"no grid for generation {generation.id}")
    pictures, size = cell_pictures(grid)
    return draw(grid.settings, pictures, size)


def queue_picture_when_done(generation_ids: list[str]) -> None:
    """For each grid one of these generations is a cell of: once every cell has ended, queue its picture (once)."""
    grid_ids = set(db.session.scalars(select(GridCell.grid_id).where(GridCell.generation_id.in_(generation_ids))))
    for grid_id in grid_ids:
        _queue_picture(grid_id)


def _queue_picture(grid_id: str) -> None:
    grid = db.session.get(Grid, grid_id, populate_existing=True)
    if grid is None or grid.generation_id is not None:
        return
    expected = 1
    for axis in grid.settings["axes"]:
        expected *= len(axis["values"])
    cells = list(db.session.scalars(select(Generation).join(GridCell, GridCell.generation_id == Generation.id)
                                    .where(GridCell.grid_id == grid_id).execution_options(populate_existing=True)))
    if len(cells) < expected or any(GenerationStatus(cell.status) not in FINAL for cell in cells):
        db.session.rollback()
        return
    base, first = grid.settings["base"], cells[0]
    width, height, *_ = layout(grid.settings, first.width, first.height)
    row = Generation(user_id=grid.user_id, status=GenerationStatus.QUEUED, prompt=base["prompt"],
                     negative_prompt=base.get("negative_prompt") or "", style=base.get("style") or "none",
                     model=base["model"], width=width, height=height, steps=1, guidance=float(base["guidance"]),
                     seed=int(base["seed"]), num_images=1, source=Source.GRID)
    db.session.add(row)
    db.session.flush()
    claimed = db.session.execute(update(Grid).where(Grid.id == grid_id, Grid.generation_id.is_(None))
                                 .values(generation_id=row.id)).rowcount
    if claimed != 1:  # another process queued it first
        db.session.rollback()
        return
    db.session.commit()
    try:
        lifecycle.enqueue(row)
    except Exception:  # the reconciliation chore enqueues a queued row whose job is missing
        log.exception("grid %s: could not enqueue its picture %s", grid_id, row.id)
