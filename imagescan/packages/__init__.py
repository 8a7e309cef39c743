"""An image's package databases (dpkg, apk, rpm): packages, purls, and file owners."""

from imagescan.packages.model import Manager, Package, PackageDb
from imagescan.packages.osrelease import OsRelease, read_os_release
from imagescan.packages.read import read_packages

__all__ = ["Manager", "OsRelease", "Package", "PackageDb", "read_os_release", "read_packages"]
