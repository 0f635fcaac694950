"""Use cases, called by API endpoints and by job tasks, each inside the one unit of work its edge
opened (``app/unit_of_work.py``): they add to the session and never commit or roll back."""
