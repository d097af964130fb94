"""The local page and its API: `GET /` (the page), `POST /api/predict`, `GET /api/models`.

`POST /api/predict` takes a multipart form whose field `file` is a raw spectra
file in any supported format (pickle, CSV, Parquet; compressed or not), or in
an image study one image, and returns spectragrid.serve.payload's JSON;
`?spectra=1` and `?images=1` add the spectra or the image the page draws. A
file that cannot be read is answered 400 with a message naming what is wrong;
the server goes on serving.

Everything from a file reaches the page as data: the template escapes what it
renders and the page's script writes text with `textContent`, never as HTML;
the Content-Security-Policy allows this origin's script and styles only.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from spectragrid.data.unpickle import RawDataError
from spectragrid.serve.limits import BodyLimit
from spectragrid.serve.payload import payload
from spectragrid.serve.scoring import score_batch
from spectragrid.serve.study import ServingStudy
from spectragrid.serve.uploads import read_study_upload, shown_name

log = logging.getLogger(__name__)

_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_STATIC = {"serve.js": "text/javascript", "serve.css": "text/css"}


def _static(name: str) -> str:
    return resources.files("spectragrid.serve").joinpath("static", name).read_text("utf-8")


def create_app(study: ServingStudy) -> Any:
    """The ASGI app serving `study`, with its upload cap around it."""
    app = FastAPI(title="spectragrid", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Environment(
        loader=PackageLoader("spectragrid.serve", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    page = templates.get_template("serve.html.j2")
    static = {name: _static(name) for name in _STATIC}
    cards = {t: m.card() for t, m in study.models.items()}

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.update(_HEADERS)
        return response

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(
            page.render(
                dataset=study.dataset,
                cards=cards,
                max_upload_mb=study.max_upload_mb,
                images=study.images,
            )
        )

    @app.get("/static/{name}")
    def asset(name: str) -> Response:
        if name not in static:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(static[name], media_type=_STATIC[name])

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        return {"dataset": study.dataset, "models": cards}

    @app.post("/api/predict")
    def predict(
        file: Annotated[UploadFile, File()], spectra: bool = False, images: bool = False
    ) -> JSONResponse:
        name = shown_name(file.filename)
        try:
            batch = read_study_upload(file.file.read(), file.filename, study.columns, study.images)
            scores = score_batch(batch, study.models, study.saturation, study.min_integral)
        except RawDataError as err:
            return JSONResponse({"error": str(err), "file": name}, status_code=400)
        except MemoryError:
            return JSONResponse(
                {"error": f"{name}: the file does not fit in the server's memory", "file": name},
                status_code=400,
            )
        except Exception as err:
            # a file no reader check foresaw: say so, keep serving, keep the trace in the log
            log.exception("reading %s", name)
            return JSONResponse(
                {
                    "error": f"{name}: cannot be read as "
                    f"{'an image' if study.images else 'a raw spectra file'} "
                    f"({type(err).__name__}: {str(err)[:300]})",
                    "file": name,
                },
                status_code=400,
            )
        return JSONResponse(
            payload(name, batch, scores, study.models, spectra=spectra, images=images)
        )

    return BodyLimit(app, int(study.max_upload_mb * 1e6))
