"""Where Jimeng's endpoints are: the path of every call this server makes
(mweb calls are signed and carry the site's query; commerce calls go bare to the
site's commerce host; the passport call has its own envelope)."""

from __future__ import annotations

GENERATE = "/mweb/v1/aigc_draft/generate"
COMMON_CONFIG = "/mweb/v1/get_common_config"
HISTORY = "/mweb/v1/get_history_by_ids"
USER_CREDIT = "/commerce/v1/benefits/user_credit"
CREDIT_RECEIVE = "/commerce/v1/benefits/credit_receive"
ACCOUNT_INFO = "/passport/account/info/v2"
LOCAL_ITEMS = "/mweb/v1/get_local_item_list"
UPLOAD_TOKEN = "/mweb/v1/get_upload_token"
ALGO_PROXY = "/mweb/v1/algo_proxy"
