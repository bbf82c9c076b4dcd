/* What the page is showing now: the wallet page, the selected wallet and its operations. */

export const state = {
  walletCursor: null, // cursor of the wallet page on screen; null is the first page
  walletCursorStack: [], // cursors of the pages before it, for "Previous"
  walletNextCursor: null,
  walletsLoading: false,
  listedWallets: [], // the wallets of the list page on screen: the transfer form's payees
  selectedId: null,
  selectedCurrency: null, // the selected wallet's currency code: its amounts take its decimals
  selectToken: 0, // guards against a slow answer for a wallet no longer selected
  operationsNextCursor: null,
  operationIds: new Set(),
  ledger: [], // the operations in the table, newest first; the chart draws them
  clickedOperation: null,
  holdsNextCursor: null,
  holdExpiryTimer: null, // re-reads the holds when the next one listed as held expires
  holdExpiryWait: 0, // ms added when the service did not yet call an expired hold so
};
