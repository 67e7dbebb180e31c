"""SVG pictures of each subsystem's state, one module per subsystem.

Each module's `render_svg(state, focus) -> str` draws one snapshot (a mapping of
the subsystem's vocabulary) as an <svg> element; the driver module of the
subsystem (checker/subsystems/NAME.py) exposes it as its `render_svg` hook,
which the HTML report calls for the state before the first step and after each.
A module may also hold the layout its subsystem's text picture (the driver's
`render_state`) shares with the SVG one (slab.py `slab_rows`, kmalloc.py
`class_rows`). Every driver has the hook (registry.py checks it at load).
"""
