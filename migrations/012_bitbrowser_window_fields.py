"""BitBrowser's other window fields: the platform account (userName; its password and
2FA key encrypted at rest, like proxy passwords) and the window settings BitBrowser's
/browser/update accepts (workbench, abortImage, muteAudio, ...). Defaults as
BitBrowser's; existing windows get them."""
import peewee as pw

FIELDS = dict(
    platform=pw.TextField(default=""),
    platform_icon=pw.CharField(max_length=255, default=""),
    platform_user_name=pw.CharField(max_length=255, default=""),
    platform_password_enc=pw.TextField(default=""),
    fa_secret_key_enc=pw.TextField(default=""),
    is_syn_open=pw.IntegerField(default=1),
    workbench=pw.CharField(max_length=16, default="localserver"),
    country=pw.CharField(max_length=64, default=""),
    province=pw.CharField(max_length=64, default=""),
    city=pw.CharField(max_length=64, default=""),
        is_ipv6=pw.BooleanField(default=False),
    is_global_proxy_info=pw.BooleanField(default=False),
    duplicate_check=pw.IntegerField(default=0),
    abort_image=pw.BooleanField(default=False),
    abort_image_max_size=pw.IntegerField(null=True),
    abort_media=pw.BooleanField(default=False),
    mute_audio=pw.BooleanField(default=False),
    stop_while_net_error=pw.BooleanField(default=False),
    stop_while_ip_change=pw.BooleanField(default=False),
    stop_while_country_change=pw.BooleanField(default=False),
    sync_bookmarks=pw.BooleanField(default=False),
    sync_authorization=pw.BooleanField(default=False),
    sync_history=pw.BooleanField(default=False),
    sync_sessions=pw.BooleanField(default=False),
    sync_extensions=pw.BooleanField(default=False),
    sync_user_extensions=pw.BooleanField(default=False),
    sync_payments_and_address=pw.BooleanField(default=False),
    credentials_enable_service=pw.BooleanField(default=False),
    is_valid_username=pw.BooleanField(default=False),
    allowed_signin=pw.BooleanField(default=False),
    clear_cache_files_before_launch=pw.BooleanField(default=False),
    clear_cache_without_extensions=pw.BooleanField(default=False),
    clear_cookies_before_launch=pw.BooleanField(default=False),
    clear_histories_before_launch=pw.BooleanField(default=False),
    random_fingerprint=pw.BooleanField(default=False),
    disable_gpu=pw.BooleanField(default=False),
    disable_translate_popup=pw.BooleanField(default=False),
    disable_notifications=pw.BooleanField(default=False),
    disable_clipboard=pw.BooleanField(default=False),
    memory_saver=pw.BooleanField(default=False),
    enable_background_mode=pw.BooleanField(default=False),
)


def migrate(migrator, database, fake=False, **kwargs):
    migrator.add_fields("window", **FIELDS)


def rollback(migrator, database, fake=False, **kwargs):
    migrator.remove_fields("window", *FIELDS)
