"""Every external version rtdi deploys, in one place.

Bumping a version is a one-line change here; tests assert that nothing else in the tree
spells a chart, image or engine version (tests/test_versions.py).
"""

# Managed Kubernetes control planes.
EKS_VERSION = "1.33"
GKE_VERSION = "1.33"
GKE_RELEASE_CHANNEL = "REGULAR"

# EKS managed add-ons, pinned to builds published for EKS_VERSION.
EKS_ADDONS = {
    "vpc-cni": "v1.20.4-eksbuild.1",
    "coredns": "v1.12.3-eksbuild.1",
    "kube-proxy": "v1.33.5-eksbuild.2",
    "aws-ebs-csi-driver": "v1.51.0-eksbuild.1",
}
