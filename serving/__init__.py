"""The serving layer in front of the Flask app: stdlib and gunicorn only.

gunicorn.conf.py imports this package in the master, before gevent patches the
workers, so nothing here may import ``jimeng_api`` (whose ``__init__`` pulls in
requests and ssl) at module level.
"""
