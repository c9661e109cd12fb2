"""Bottom-up (model-free) saliency: the Itti-Koch-Niebur model and its peers (numpy + OpenCV, no torch)."""
