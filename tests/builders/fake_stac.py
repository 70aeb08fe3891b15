"""A tiny local STAC API with Sentinel-2-like COGs, for builder tests.

``make_world(directory)`` writes small cloud-optimised GeoTIFFs (one per band
and item, at 10, 20 and 60 m like Sentinel-2 L2A) for a few fake scenes in UTM
zone 33N, and ``FakeStacServer`` serves, on 127.0.0.1 only:

* ``GET /stac``: a landing page conforming to STAC API item search;
* ``POST|GET /stac/search``: items whose footprint contains the ``intersects``
  point and whose time is in the ``datetime`` range (unless
  ``honour_datetime`` is off; the cloud ``query`` and ``sortby`` are
  deliberately ignored, so the client's own filtering is what is tested,
  unless named in ``honoured``), in pages of ``limit`` items (at most
  ``page_size``) linked by ``next`` links (POST);
* ``GET|HEAD /cogs/<file>``: the COGs, with HTTP Range support (what GDAL's
  ``/vsicurl/`` needs).

Faults can be injected: a number of 503 answers for the next requests to a
path prefix, paths that always answer 503, and a delay per COG request. The
landing page declares the query and sort extensions unless they are taken out
of ``conforms``.
"""

import json
import re
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform as warp_transform
from shapely.geometry import shape

BANDS = (
    'B01',
    'B02',
    'B03',
    'B04',
    'B05',
    'B06',
    'B07',
    'B08',
    'B8A',
    'B09',
    'B11',
    'B12',
)
RESOLUTION = {
    'B01': 60, 'B02': 10, 'B03': 10, 'B04': 10, 'B05': 20, 'B06': 20,
    'B07': 20, 'B08': 10, 'B8A': 20, 'B09': 60, 'B11': 20, 'B12': 20,
}  # fmt: skip
CRS_UTM = CRS.from_epsg(32633)
#: Scene extent in metres (a multiple of 60 m; real scenes are 109,800 m).
EXTENT = 3840
#: Value of every pixel of the cloudy item: never expected in an output.
CLOUDY_VALUE = 7777


@dataclass
class Scene:
    """A fake scene: one footprint, several items."""

    name: str
    left: float
    top: float

    @property
    def footprint(self) -> dict[str, Any]:
        xs = [self.left, self.left + EXTENT, self.left + EXTENT, self.left, self.left]
        ys = [self.top, self.top, self.top - EXTENT, self.top - EXTENT, self.top]
        lons, lats = warp_transform(CRS_UTM, 'EPSG:4326', xs, ys)
        return {'type': 'Polygon', 'coordinates': [list(zip(lons, lats, strict=True))]}

    def box(self, margin: float) -> dict[str, Any]:
        """A lon/lat polygon inside the scene, *margin* metres from its edges."""
        x0, x1 = self.left + margin, self.left + EXTENT - margin
        y0, y1 = self.top - EXTENT + margin, self.top - margin
        xs, ys = [x0, x1, x1, x0, x0], [y1, y1, y0, y0, y1]
        lons, lats = warp_transform(CRS_UTM, 'EPSG:4326', xs, ys)
        return {'type': 'Polygon', 'coordinates': [list(zip(lons, lats, strict=True))]}


#: Scene A: a good item and a cloudy one. Scene B: a nodata item (least cloudy)
#: and a good one. Scene C: an item whose B01 always fails (HTTP 503). Scene D:
#: items of several dates in 2022, for multi-temporal builds (see DATETIMES).
#: Scene E: ten cloudy items, answered first, then a good one.
SCENES = {
    'A': Scene('A', 500000, 5550000),
    'B': Scene('B', 520000, 5550000),
    'C': Scene('C', 540000, 5550000),
    'D': Scene('D', 560000, 5550000),
    'E': Scene('E', 580000, 5550000),
}

#: item id -> (scene, eo:cloud_cover, kind)
ITEMS = {
    'S2_A_GOOD': ('A', 5.0, 'good'),
    'S2_A_CLOUDY': ('A', 60.0, 'cloudy'),
    'S2_B_NODATA': ('B', 1.0, 'nodata'),
    'S2_B_GOOD': ('B', 10.0, 'good'),
    'S2_C_BROKEN': ('C', 3.0, 'good'),
    'S2_D_JAN': ('D', 8.0, 'good'),
    'S2_D_FEB': ('D', 2.0, 'good'),
    'S2_D_MAY1': ('D', 0.5, 'good'),
    'S2_D_JUN_NODATA': ('D', 1.0, 'nodata'),
    'S2_D_JUL': ('D', 12.0, 'good'),
    'S2_D_OCT': ('D', 15.0, 'good'),
    'S2_D_NOV_CLOUDY': ('D', 60.0, 'cloudy'),
    **{f'S2_E_CLOUDY{i}': ('E', 60.0 + i, 'cloudy') for i in range(10)},
    'S2_E_GOOD': ('E', 5.0, 'good'),
}

#: The extensions of item search that a landing page can declare.
EXTENSIONS = {
    'query': 'https://api.stacspec.org/v1.0.0/item-search#query',
    'sort': 'https://api.stacspec.org/v1.0.0/item-search#sort',
}

#: The acquisition time of each item (the others: 2022-06-01T10:00:00Z).
#: S2_D_MAY1 is late on 1 May in UTC (2 May in Europe's summer time).
DATETIMES = {
    'S2_D_JAN': '2022-01-15T10:00:00Z',
    'S2_D_FEB': '2022-02-20T10:00:00Z',
    'S2_D_MAY1': '2022-05-01T23:30:00Z',
    'S2_D_JUN_NODATA': '2022-06-10T10:00:00Z',
    'S2_D_JUL': '2022-07-05T10:00:00Z',
    'S2_D_OCT': '2022-10-01T10:00:00Z',
    'S2_D_NOV_CLOUDY': '2022-11-11T10:00:00Z',
}
DEFAULT_DATETIME = '2022-06-01T10:00:00Z'


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace('Z', '+00:00'))


def in_range(item_id: str, interval: str | None) -> bool:
    """Whether an item's time is in a STAC ``datetime`` interval (or instant)."""
    if not interval:
        return True
    moment = _moment(DATETIMES.get(item_id, DEFAULT_DATETIME))
    first, _, last = interval.partition('/')
    if not _:
        return moment == _moment(first)
    return (first in ('', '..') or _moment(first) <= moment) and (
        last in ('', '..') or moment <= _moment(last)
    )


def band_values(kind: str, band: str, size: int) -> np.ndarray:
    """The pixels of one band of one item kind (deterministic)."""
    rows, cols = np.mgrid[0:size, 0:size]
    if kind == 'cloudy':
        return np.full((size, size), CLOUDY_VALUE, dtype=np.uint16)
    data: np.ndarray = 1000 + 100 * BANDS.index(band) + (rows * 7 + cols * 3) % 50
    data = data.astype(np.uint16)
    if kind == 'nodata':
        data[:, : size * 3 // 5] = 0  # 60 % nodata
    return data


def make_world(directory: Path) -> None:
    """Write the COGs of every item into *directory*."""
    directory.mkdir(parents=True, exist_ok=True)
    for item_id, (scene_name, _, kind) in ITEMS.items():
        scene = SCENES[scene_name]
        for band in BANDS:
            res = RESOLUTION[band]
            size = EXTENT // res
            profile = {
                'driver': 'COG',
                'dtype': 'uint16',
                'count': 1,
                'height': size,
                'width': size,
                'crs': CRS_UTM,
                'transform': from_origin(scene.left, scene.top, res, res),
                'nodata': 0,
                'compress': 'deflate',
                'blocksize': 128,
            }
            with rasterio.open(
                directory / f'{item_id}_{band}.tif', 'w', **profile
            ) as dst:
                dst.write(band_values(kind, band, size), 1)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request (the SIGKILL test) resets its connection.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeStacServer:
    """The local STAC API and COG server, in a background thread."""

    def __init__(self, cogs: Path) -> None:
        self.cogs = cogs
        self.lock = threading.Lock()
        #: path prefix -> number of 503 answers left
        self.faults: dict[str, int] = {}
        #: path prefixes that always answer 503
        self.broken: set[str] = {'/cogs/S2_C_BROKEN_B01'}
        #: path prefixes that answer 404 (an asset listed but not there)
        self.gone: set[str] = set()
        #: seconds of delay per COG request
        self.delay = 0.0
        #: whether searches keep only the items in their ``datetime`` range
        self.honour_datetime = True
        #: the extensions (keys of EXTENSIONS) the landing page declares
        self.conforms = set(EXTENSIONS)
        #: the extensions searches apply (the others are ignored)
        self.honoured: set[str] = set()
        #: most items per page of a search, whatever its ``limit`` (None: any)
        self.page_size: int | None = None
        #: largest ``limit`` a search takes; a larger one answers HTTP 400, as
        #: the Planetary Computer does above 1000 (None: any)
        self.max_limit: int | None = None
        #: (method, path, JSON body or None) of every request
        self.requests: list[tuple[str, str, Any]] = []
        self.httpd = _QuietServer(('127.0.0.1', 0), self._handler())
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> 'FakeStacServer':
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    @property
    def api_url(self) -> str:
        return f'{self.url}/stac'

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.broken = {'/cogs/S2_C_BROKEN_B01'}
            self.gone = set()
            self.delay = 0.0
            self.honour_datetime = True
            self.conforms = set(EXTENSIONS)
            self.honoured = set()
            self.page_size = None
            self.max_limit = None
            self.requests.clear()

    def count(self, method: str, prefix: str) -> int:
        with self.lock:
            return sum(
                1 for m, p, _ in self.requests if m == method and p.startswith(prefix)
            )

    # -- STAC documents ------------------------------------------------------

    def landing(self) -> dict[str, Any]:
        api = self.api_url
        return {
            'type': 'Catalog',
            'id': 'fake-stac',
            'stac_version': '1.0.0',
            'description': 'fake STAC API for tests',
            'conformsTo': [
                'https://api.stacspec.org/v1.0.0/core',
                'https://api.stacspec.org/v1.0.0/item-search',
                *(EXTENSIONS[name] for name in sorted(self.conforms)),
            ],
            'links': [
                {'rel': 'self', 'href': api, 'type': 'application/json'},
                {'rel': 'root', 'href': api, 'type': 'application/json'},
                {
                    'rel': 'search',
                    'href': f'{api}/search',
                    'type': 'application/geo+json',
                    'method': 'POST',
                },
                {
                    'rel': 'search',
                    'href': f'{api}/search',
                    'type': 'application/geo+json',
                    'method': 'GET',
                },
            ],
        }

    def item(self, item_id: str) -> dict[str, Any]:
        scene_name, cloud, _ = ITEMS[item_id]
        footprint = SCENES[scene_name].footprint
        return {
            'type': 'Feature',
            'stac_version': '1.0.0',
            'id': item_id,
            'collection': 'sentinel-2-l2a',
            'geometry': footprint,
            'bbox': list(shape(footprint).bounds),
            'properties': {
                'datetime': DATETIMES.get(item_id, DEFAULT_DATETIME),
                'eo:cloud_cover': cloud,
                'proj:epsg': 32633,
                's2:processing_baseline': '05.09',
            },
            'links': [],
            'assets': {
                band: {
                    'href': f'{self.url}/cogs/{item_id}_{band}.tif',
                    'type': 'image/tiff; application=geotiff; profile=cloud-optimized',
                    'roles': ['data'],
                }
                for band in BANDS
            },
        }

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        point = shapely.Point(*body['intersects']['coordinates'])
        found = [
            item_id
            for item_id, (scene, _, _) in ITEMS.items()
            if shape(SCENES[scene].footprint).intersects(point)
            and 'sentinel-2-l2a' in body.get('collections', [])
            and (not self.honour_datetime or in_range(item_id, body.get('datetime')))
        ]
        query = body.get('query') or {}
        if 'query' in self.honoured and 'eo:cloud_cover' in query:
            below = query['eo:cloud_cover']['lt']
            found = [i for i in found if ITEMS[i][1] < below]
        if 'sort' in self.honoured and body.get('sortby'):
            found.sort(key=lambda i: ITEMS[i][1])
        start = int(body.get('token') or 0)
        size = body.get('limit') or len(found)
        if self.page_size is not None:
            size = min(size, self.page_size)
        links = []
        if start + size < len(found):
            links.append(
                {
                    'rel': 'next',
                    'href': f'{self.api_url}/search',
                    'type': 'application/geo+json',
                    'method': 'POST',
                    'body': {'token': str(start + size)},
                    'merge': True,
                }
            )
        features = [self.item(i) for i in found[start : start + size]]
        return {'type': 'FeatureCollection', 'features': features, 'links': links}

    # -- HTTP ----------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _fault(self, path: str) -> bool:
                with server.lock:
                    if any(path.startswith(p) for p in server.broken):
                        return True
                    for prefix, left in server.faults.items():
                        if path.startswith(prefix) and left > 0:
                            server.faults[prefix] = left - 1
                            return True
                return False

            def _send(
                self,
                status: int,
                body: bytes,
                ctype: str,
                extra: dict[str, str] | None = None,
                head: bool = False,
            ) -> None:
                self.send_response(status)
                self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(body)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, document: dict[str, Any]) -> None:
                self._send(200, json.dumps(document).encode(), 'application/json')

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                body = None
                if method == 'POST':
                    length = int(self.headers.get('Content-Length', 0))
                    body = json.loads(self.rfile.read(length) or b'{}')
                elif url.path.startswith('/cogs/'):
                    body = self.headers.get('Range')
                elif url.path.endswith('/search'):
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    body = {
                        'intersects': json.loads(query.get('intersects', 'null')),
                        'collections': query.get('collections', '').split(','),
                        'datetime': query.get('datetime'),
                    }
                with server.lock:
                    server.requests.append((method, url.path, body))
                head = method == 'HEAD'
                if self._fault(url.path):
                    self._send(503, b'busy', 'text/plain', head=head)
                    return
                if any(url.path.startswith(p) for p in server.gone):
                    self._send(404, b'not found', 'text/plain', head=head)
                    return
                if url.path in ('/stac', '/stac/'):
                    self._json(server.landing())
                elif url.path == '/stac/search' and body is not None:
                    limit = int(body.get('limit') or 0)
                    if server.max_limit is not None and limit > server.max_limit:
                        message = f'limit {limit} is above {server.max_limit}'
                        self._send(400, message.encode(), 'text/plain')
                        return
                    self._json(server.search(body))
                elif url.path.startswith('/cogs/'):
                    self._cog(url.path[len('/cogs/') :], head=head)
                else:
                    self._send(404, b'not found', 'text/plain', head=head)

            def _cog(self, name: str, head: bool) -> None:
                if server.delay:
                    threading.Event().wait(server.delay)
                path = server.cogs / name
                if '/' in name or not path.is_file():
                    self._send(404, b'not found', 'text/plain', head=head)
                    return
                data = path.read_bytes()
                match = re.fullmatch(
                    r'bytes=(\d+)-(\d*)', self.headers.get('Range', '')
                )
                if match is None:
                    self._send(
                        200, data, 'image/tiff', {'Accept-Ranges': 'bytes'}, head=head
                    )
                    return
                first = int(match.group(1))
                last = int(match.group(2)) if match.group(2) else len(data) - 1
                last = min(last, len(data) - 1)
                if first >= len(data):
                    self._send(
                        416,
                        b'',
                        'text/plain',
                        {'Content-Range': f'bytes */{len(data)}'},
                        head=head,
                    )
                    return
                self._send(
                    206,
                    data[first : last + 1],
                    'image/tiff',
                    {
                        'Accept-Ranges': 'bytes',
                        'Content-Range': f'bytes {first}-{last}/{len(data)}',
                    },
                    head=head,
                )

            def do_GET(self) -> None:
                self._handle('GET')

            def do_HEAD(self) -> None:
                self._handle('HEAD')

            def do_POST(self) -> None:
                self._handle('POST')

        return Handler


def main() -> None:  # pragma: no cover - manual use
    import time

    cogs = Path(sys.argv[1])
    make_world(cogs)
    with FakeStacServer(cogs) as server:
        print(server.api_url, flush=True)
        time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 60)


if __name__ == '__main__':  # pragma: no cover
    main()
