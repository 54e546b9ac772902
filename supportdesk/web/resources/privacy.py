"""A customer's personal data (DESIGN.md section 13): export and erasure, API and pages."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

import falcon

from supportdesk.core.errors import ValidationFailed
from supportdesk.privacy.erasure import Erased, ErasureService, parse_customer_email
from supportdesk.privacy.export import Export, ExportService
from supportdesk.web.resources.common import Pages, form_data, form_failed, origin_of

if TYPE_CHECKING:
    from supportdesk.web.services import Services


def _send_zip(resp: falcon.Response, export: Export) -> None:
    resp.content_type = "application/zip"
    resp.downloadable_as = export.filename
    resp.content_length = export.size
    resp.stream = export.file  # closed by the server when sent (a spooled temporary file)
    resp.set_header("Cache-Control", "no-store")


class CustomerExportResource:
    def __init__(self, exports: ExportService):
        self.exports = exports

    def on_get(self, req: falcon.Request, resp: falcon.Response, email: str) -> None:
        _send_zip(resp, self.exports.export(origin_of(req), email))


class CustomerEraseResource:
    def __init__(self, erasure: ErasureService):
        self.erasure = erasure

    def on_post(self, req: falcon.Request, resp: falcon.Response, email: str) -> None:
        resp.media = {"erased": self.erasure.erase(origin_of(req), email).as_dict()}


# --- pages -----------------------------------------------------------------------------------


class CustomerDataPage:
    """The form: an address, then Export (a download) or Erase (which asks to confirm)."""

    def __init__(self, pages: Pages):
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.show(req, resp)

    def show(self, req, resp, *, status=200, errors=None, message=None, form=None) -> None:
        erased = None
        if req.get_param("notice") == "erased":
            erased = {
                name: req.get_param_as_int(name, min_value=0) or 0
                for name in Erased.__dataclass_fields__
            }
        self.pages.render(
            req,
            resp,
            "customer_data.html",
            status=status,
            errors=errors or {},
            message=message,
            form=form or {},
            erased=erased,
        )


class CustomerDataExportPage:
    def __init__(self, exports: ExportService, form_page: CustomerDataPage):
        self.exports = exports
        self.form_page = form_page

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        email = req.get_param("email") or ""
        try:
            export = self.exports.export(origin_of(req), email)
        except ValidationFailed as error:
            form_failed(req, resp, error, self.form_page.show, form={"email": email})
            return
        _send_zip(resp, export)


class CustomerDataErasePage:
    """Two steps without JavaScript: the first POST shows what erasing means and asks for
    the address once more; the second, with `confirm` equal to it, erases."""

    def __init__(self, erasure: ErasureService, pages: Pages, form_page: CustomerDataPage):
        self.erasure = erasure
        self.pages = pages
        self.form_page = form_page

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        try:
            email = parse_customer_email(form.get("email", ""))
        except ValidationFailed as error:
            form_failed(req, resp, error, self.form_page.show, form=form)
            return
        confirm = str(form.get("confirm", "")).strip().lower()
        if "confirm" not in form or confirm != email:
            errors = {"confirm": "Type the same address to confirm."} if "confirm" in form else {}
            status = 422 if errors else 200
            self.pages.render(
                req, resp, "customer_data_erase.html", status=status, email=email, errors=errors
            )
            return
        erased = self.erasure.erase(origin_of(req), email)
        raise falcon.HTTPSeeOther(
            "/customer-data?" + urlencode({"notice": "erased", **erased.as_dict()})
        )


def build(services: Services) -> dict[str, object]:
    form_page = CustomerDataPage(services.pages)
    return {
        "customer_export": CustomerExportResource(services.customer_export),
        "customer_erase": CustomerEraseResource(services.erasure),
        "customer_data_page": form_page,
        "customer_data_export_page": CustomerDataExportPage(services.customer_export, form_page),
        "customer_data_erase_page": CustomerDataErasePage(
            services.erasure, services.pages, form_page
        ),
    }
