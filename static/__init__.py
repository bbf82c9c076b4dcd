"""The page's static files, installed as the package ``wallet.static`` (setup.cfg maps this
folder there) so that the service serves them wherever it is installed. A regular package
rather than a namespace one: an editable install imports a folder mapped from outside its
parent package only through an ``__init__.py``."""
