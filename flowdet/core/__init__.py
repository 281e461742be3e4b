"""The torch-free core every stage and the edge runtime stand on: numpy, OpenCV and the standard library only.

=================  ==========================================================================
``defaults``       constants shared by training and runtime (letterbox pad 114, NWD's C = 12.8)
``media``          the image and video file extensions, defined once
``size``           :class:`InputSize`, the network input (H, W), parsed and checked once
``letterbox``      the one preprocessing (resize, top-left on a 114 canvas, BGR float 0–255)
``imread``         reading image files safely (size caps, headers first, counted skips)
``image_headers``  format, size, completeness and EXIF orientation from a file's header bytes
``draw``           drawing detections on an image
``boxes``/``nms``  box formats, pairwise IoU and NMS in numpy
``detections``     :class:`Detections`, one image's results (indexing, merge, empty)
``postprocess``    decoded model outputs → :class:`Detections` (the same for every backend)
``validate``       the value checks every verb shares (flag ranges, writable outputs, model metadata)
=================  ==========================================================================

Layer rule (tests/test_layout.py): modules here import only each other and the two leaf modules
beneath everything, ``flowdet.errors`` and ``flowdet.log`` (standard library only); never torch.
Nothing is imported here, so ``import flowdet.core.boxes`` costs only numpy.
"""
