"""Landing page for visitors; the studio for signed-in people."""
from flask import Blueprint, render_template
from flask_login import current_user

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    """The studio when signed in, else a landing page."""
    if not current_user.is_authenticated:
        return render_template("main/landing.html")
    return render_template("main/studio.html")
