"""OpenGL drawing shared by the window's viewport and headless (EGL) rendering."""
