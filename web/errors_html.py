"""Error pages for people: what happened, in plain words, in Chinese and English."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError

PAGES = {
    400: (
        "请求无效",
        "Bad request",
        "页面已过期或表单不完整，请返回重新提交。",
        "The page expired or the form was incomplete; go back and send it again.",
    ),
    403: (
        "无权操作",
        "Not allowed",
        "您的角色不能执行此操作。如需权限，请联系信息科。",
        "Your role does not allow this. Ask the IT department if you need it.",
    ),
    404: (
        "找不到页面",
        "Not found",
        "该页面或记录不存在，或不在您的查看范围内。",
        "This page or record does not exist, or is not yours to see.",
    ),
    413: (
        "文件过大",
        "File too large",
        "上传的文件超过允许的大小。",
        "The uploaded file is larger than allowed.",
    ),
}


def _page(code: int):
    title_zh, title_en, text_zh, text_en = PAGES[code]
    return render_template(
        "error.html",
        code=code,
        title_zh=title_zh,
        title_en=title_en,
        text_zh=text_zh,
        text_en=text_en,
    ), code


def register(app: Flask) -> None:
    """HTML error pages outside /api (the API keeps its JSON error shape)."""

    @app.errorhandler(CSRFError)
    def _csrf(exc):
        if request.path.startswith("/api/"):
            from web.api.errors import error_response

            return error_response(400, "csrf_failed", "The CSRF token is missing or invalid.")
        return _page(400)

    for code in PAGES:
        app.register_error_handler(code, _make(code))


def _make(code: int):
    def handler(exc):
        if request.path.startswith("/api/"):
            from web.api.errors import HTTP_CODES, error_response

            return error_response(code, HTTP_CODES.get(code, "error"), str(exc.description))
        return _page(code)

    return handler
