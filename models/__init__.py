"""The trained models that ship with frame-daemon (installed as the package frame_daemon.models).

Each model is `<name>.tflite` with its metadata `<name>.json`; find them with
`frame_daemon.vision.model_files.model_path(name)`, never by a path relative to the checkout.
"""
