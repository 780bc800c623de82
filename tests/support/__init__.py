"""What the tests share: the app harness, HTTP and database builders, clocks and assertions.

Test modules import from here, never from a conftest.py (conftest files hold only fixtures).
"""
