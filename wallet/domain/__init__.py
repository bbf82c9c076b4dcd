"""The pure centre: money, wallets, the ledger, the ports and the use cases."""
