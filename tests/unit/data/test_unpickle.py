"""The allow-listing unpickler: every kind of DataFrame pickle loads, nothing else runs.

Refusals are checked for what they leave behind: no marker file, no module
imported (checked in a fresh interpreter), no file opened, no memory grown.
"""

from __future__ import annotations

import base64
import codecs
import copyreg
import datetime
import decimal
import gzip
import io
import json
import lzma
import os
import pickle
import struct
import subprocess
import sys
import zoneinfo
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from dateutil import tz as dateutil_tz

from spectragrid.data.unpickle import (
    MAX_EXPANSION,
    MIN_DECOMPRESSED_CAP,
    RawDataError,
    UnsafePickleError,
    load_dataframe,
    load_pickle_dataframe,
    loads_dataframe,
    read_pickle_dataframe,
    refuse_zone_paths,
)

ROOT = Path(__file__).resolve().parents[3]

# Pickles written by older versions (pandas 2.2.3 / numpy 1.26.4 / pyarrow 25, and pandas
# 2.3.3 with future.infer_string), xz-compressed and base64-encoded.
_PANDAS_2_2_PICKLE = (
    "/Td6WFoAAATm1rRGAgAhARwAAAAQz1jM4DXfDkJdAEABTntITYBjELeol7a2IAEoieLB2L8D25pYxD6eKZjiFyIspuAB"
    "fELfPU/U0ibdB3XnItVFNFEKJHGee+HpFeXYElhwraqH8eRQinrExE4/dA+DMWGtdkBExnuFViglJFbnnfozfkHPHg7z"
    "mk9sKhfxAsVI6vL6prii6uPvYHjRoj4YY+Oqd+/AHZZ7XIXmLmxripOCoN4G9jiphg/ikFyDFRCiepK7UgchiuW+wTZc"
    "1WT6G34hTgypaGUomB4H/jOxd1ndmdVduGQK6NjgSJoglrEYM1cA7r60ruel/LPQ4K1yxTZ11WV/IPgqh3uEkR7nSyrO"
    "n74ZkXMGBRMRRUp78JjhJY2BD9g4X9iKR4/blwllKj2b8JmzsJGKbrSAfn4pm0RR+1QypZ6V6/MMAnfLmuH6B75p+FXZ"
    "3CZPn0casDlwoiAE7L71Men1gw4vMj88G08ZUHpjXfpGS7rKGmW+BTf88L3eqOBOL8ex/XDG0Ql09htuBJnyi4isvWOZ"
    "ZaQe1VHUE3S47mmYNCl20++84v3ZMPM/5nKWSse6gJn0f4C18rYxeQ89owEd1AIyXe6ztzCaACUJUwBxpqHsBBLP85iq"
    "iUiU1McTp+N8KJ4yT6Qp54HJSvbSnloQpf044llrpoMNwrZab5r7UBqqdYDpFiMXl/y1aiBw/pdRRaF7iNsmCNS5WiN7"
    "OdW/goBH9tUtdVIyxQiL9pY0MMTy+xbQP9li6/uOqEd+Ok7lOgRguzKYvUYasLmST+lo8fkkXm7ac9siQf19JPFjx7w/"
    "4uxS7IF9E/U2zNsiXb/Jk04vHNBvwZTidczUFYv87VboK3pPMpm2a2+B9mROABh9Tp8aNfuhWOxCJfFtnt8MmDOhA6un"
    "E0hdsz27hTp1Ya0nJSyHq5tR0uxuasTjiwGalgfyv9IVyhfou9eJFOg9Aon6+ZlwvTv235bF7bhbRM4TsWwdzT+QjX3Y"
    "ZNG4HMTo81GRHs6IO0Ifv9LzOw2kJQf8JJb7OhsdgnuhcSYhUs9kyduzUT4c2sXT12hULdgpnV0r2SEaePTs49QD1BfB"
    "b3NJnAiMqIzdoRw23LZt7OkmODBgXWrTTVwFrkCwZotvBBi113ayoTTR7d8aoZO9hn3REpnFhbTuUEoo0eUalNFcnQAn"
    "oBwoQ/8+VwLOvJN9ryeQMzugwIIQtJmm3NW7I/vXto1PFKqM33SLQdGUoxDnSv3MVNgwIYjxZi6GotaRRJyC+N5VWBTk"
    "SAttFwyO0saN3jfl7+osyyyjVtoilptebfFJz3zz+IU+up3Zc79kPEHWLfPxj5TAt0E9/ZfqP1KPxvzx48KiLk5YL/lM"
    "VeInrUXDcQWfHlDVAPrkuS1TrcpBRJGfIIZ+TSb9JXCzXu/HeRMQPR34Uc015BXrulqGdliPpar5iIcIz7mQPUaWSRRg"
    "wlPir7eTfuP3ZiCeZ8pc2x4xFiRPrEb4rA5GVUgLC0B8uxokYAe/QvxwqYCB6FnvwoYbpUqI85P45x8D+taqmtKddtaO"
    "h7KfyjOmaUVDeSH59nh6KnCoP07hCn8l6Pr5/wIhvP434xxzkKV8rCi5aoMNbkpccOiB4z1e9kl0uDb8k59yo081ZpRD"
    "2YJZS5IOrxCrm4MbNMM1G8zCbRq2JfE8WFAIr12zM0jj4RMYkzBh6qqecPWB3Ld6SdfWf4o0HjZwfdjetFjZahF4AIoN"
    "+PXOmfHTz79+ZeIBKX58jSI0yLvI44rMYNjo0DwiB/uNEFZ2GEWtrvqtUrMm9YzUbkr+Q56qOkadVGsLucza7gS78zJL"
    "xYiK9eoMbXWIEKICOGhPcrp9ixNCZiU4mAIS7ZjxMxiJgKa2qmr311xpxsBjAatqp14rMpglKfTVyqwLihGtQLV0E50M"
    "YzLzSLPJHp3RVfIplQyAj3R0pExPSagF/6GwMXcYFLJjwLXTcAN0xsBtCWB4OWT3bb1ITpVjl99OW3HalFpR5xSldAg1"
    "DL7hc7GBC6JKMtFYwBDR6KhfxIHv2SZiyPB/b3wegXYtYMLLifQIBY3sz3jyTI4W0Dy9InHWqBS7O7m8srtFwCjz+HDU"
    "oDd5pZr7U5sZ0ibiPyueIEn9n5RtgB0xvrPm7tQJ1vCri0yFGv2qccMk22LZKFQ/zu/YWd/eYlblE8vn+715gjzVf5wi"
    "lnKEtkjBmwP74pMJ6f6QjbwoW7ibpYPalkdQYI7XT3jI66rMoQD8+Dt70NeVYH2m5H7LtG1kSqhonkLDRiYU+c86uASI"
    "4//JS4W775LY2Sl176nk5R64BZc+wF3gkGfbk9gey7ErX6vBXScpvbautXKtxwXtmTwLm73E0LiMDw0Us2N/7o1z/3Th"
    "MV/st+DAnki23o2M0oXgcExpcDc9fajTGSZWpB8jIJJ1cbTGLT4zKvJLmLSC1iU41SLIFAaLA22GcJUZcO2BnpRS8c8F"
    "npxfEaPiXf2QcpMDvHYeR+JWkdRobEFOhARLYCPGBcpxliNNGj4eDMdQ4NxB4LDFpA9/XfzNRPhzSNfLc+sbrbbTia/t"
    "j1pQ5ZtuZcnoODxEFhVdqZQMQO2bdOvmYgWoSw3HJJeQ7TPOu34+txDyRed18kNdoOSP2NNen8sGudfyF6GcdY1Hf8kp"
    "zqsGXVQ6YZSyHO0uP8qYGTBuVFQncmn1zBMtUaWpcskPmW+oYLqDkoS8HVLvxjWdwDTaCOFXzXfcTxdQHwWnTUN7MrSR"
    "+RV+lQ9mylBVQvLDIcWYxxn42+etNN2kuGR/Q7gz6evMkFxO8dwxH3v36+WN6yIg8CfZNpld6R8D+fnPpqBZgzQA6aTQ"
    "nFgYGcYvb/7pJKMM3zbm8uYj83WLa2p9wIMQ1dt0DeP9vdtFPGmJeo0LNwOLA+i3iWrGpsrLF3OgYfzktuSy0JOFxKGH"
    "2tKktrfEhNGGVKngYq6Dfy5rwSHmssqnRoyhKsDsYCzqdHh/bTXJUl737HUYIROZQ/QzsoRl5pDBNAxeRSLWVl2zJkWc"
    "sEAwf/nIRphKCHW5qe7ZYhw7YH+YIu+qKkyLkai2LUV5cNBD104WqFK58HeOJ236qXpD0r5LdaZ98P3hitzEpoM+y/Yu"
    "U9Ibt7tFpm04jkS5JCOFFgXr9hfBprQJnvanPDza7yFjneJWfJ1994nRA8umyXALPD5+j1Ol8ZAshl2nPtLez25lPwRt"
    "joO6bvB28az3fjuXzV/0HlvPpcdufZcaFM6u4bHrfv3TG00sfEBavC0eUQKaF4mZRprZCMAhCZ/Micm7yDQ8lzCSOYXE"
    "bl+nqT0KqffJm6VxFskOx7N4lAT3XIvVxrbNqlCet7nLVbSo3c0JjaMt/+cPG16Tr9W6hs6a5obJrzG7hSDHivTCBh9g"
    "QfbuQTGkbSU8KjvCzeR9h3ZLRYue2/c/zNtQmHAYF7ZL7X873EPxikzWFJ7m5J98w3/xoz0LZ20Qrd7NU+n0/g/CnL0E"
    "SJTrkUaGNhoHFCHYwf2savgeaus1znzJuyrsLPMA/et95DyKF40wp2vwhkEzB9opuxfo0iCCZEZzlcGwWguUeOeWmeTI"
    "doJ/4MVp2c86fjrFrkJsbqAPpLPFgvMgSngdhlJiUNvrKUAyavUQgKrJN3ISzTZb2eSPUfV4BIOdMJYFW8KVnYy7wa/A"
    "ZaxAoGRP4DEHSjsV4NIffBSL6wnBGkF5LfoHvmOI8v82HRfTfUulK45R6uaqQyIfNA28isrnvnEC64cGpMQ4qBFgKMjy"
    "4JeMVBeC14zTR8GVp6bTQSIT1mgMvxlzRmXNSEk6ilQ5eg55/9oVHHWuO2pLsjqUYsm9L/aaz8NRTof1sZ8aKjCh5YWg"
    "2heynHZXR0QNOg0Ckr3W4Gfp9JaPUBttbmf5U5wMTMKfs4IjrLPlqQPTIO9G2mnJV1nQLEhNjKwFlSiMG9JysLhuQ4c6"
    "lihCv/2rF/3LYGh7/Yump9d/+5SDyeIkp+T58tSgGpOuDAPQIWTn61oxfMvlZCaN0Q3Np91K0CqbIGRxcNJiMuhvetBM"
    "6LwS2Y8xjo1w+nVky53FyIG1F1wKJfiDFJsp7y2EpHy8Zbg1reInpOtt8HlvEb/OrIQhL18R5zOCvkDaXZnK4hTGSWy0"
    "syjoF48cefCnWe8anUExq49gIjBzC8JLQ4Ek+S1kopRB5gfYp50+JGhtFQs+ZqmXvUhi/wAbVP03Zh/fALMmv76bSB9O"
    "SF3oO5/9qMTCcxKeHSUKUKXhnP4gcFX8DyaVgtTYBjRLNQuIF6jwToCOH8vtjigwxu8VJhT0dC2BF/LdHuft7pDBZXFI"
    "40XTAnibqStzmcj4ZxarUriLmOixV6l7eQpn3xh70K4b68ivfKxpt8km3fP+tnZLwUUzuXZCvQNSmqMnwtuPYEYEq9ix"
    "6Igmk7vJxE00Gka7ZVVx7A54wxJYFfmVW64XxkyFJjdSkBReRzs+3cMlkZfxjTA5IOVHmtTZ1+fOPcn5NKxBDtOnNqG8"
    "kj5LP6Fo7CErunrhh7OpYJWFVGVMbiXvgB4yO5dbbl7aV67nRvx08shZqZEv8K1TX/dziR466JbaXPohE0U8uYSj3zKv"
    "wykuuT9sN4WFluduTu6lc0Y4L77rwYHbWFEwbvVb5vVdzBkuSBJtK49F9PgRn9HnBS1nSNcVWAEjA/0OZoaoK5BB1Kiz"
    "KnDvtgNdj7LAwzY3zkGimAgZVG7Wi3+Wt9tKxUntAY4Ia+dZzg8ozp+XJGKD2QsqUQmJEc45705xYliuGFQX58VkWm54"
    "LLw7GFbrwQyVuboJjbH2gR9rK7aTTa0vnrWSiQGL3tlFwgsQGUSuT5ubkkCH1Z2LeYtett/6NK4o3tnvwb1NMdHAVmPG"
    "Ayg0nU+x593+V+DgXaqTmmqSIoYuXJi+AAAAMdQucFOmTxcAAd4c4GsAAPi2jNyxxGf7AgAAAAAEWVo="
)
_PYTZ_PICKLE = (
    "/Td6WFoAAATm1rRGAgAhARwAAAAQz1jM4AObAkVdAEABTnbm6WQ4MZKNjXqtuAhpWusombCkTOl6shGgbj7GQHVjA8NB"
    "Dzz75l41isUtReWbw7QTuV6T4S4P6G7oQgfmCz+4Kvy3zhPDvd04wJmnxaE+mulHla9p7gB7d+1SQYD13iWrfW4lAyL1"
    "kZbe4e6L9ljx0djaPofL/yeZcgrw/rso8iDgV3KJw4ApzfAlpejVH5Qjy7p4UQNXNy5YL+LYFcVddpDIOMaHgZRNinrX"
    "1h6CU4+1O1XgN7kgd6edvFVlRovdYBrKNoZ78QW16WZ0F4EBHNg+6VL/sXXqdKYV+9H50XISFiVbHU+ZknCeuW/GdBjG"
    "MX8YYtVyRaEPBexYQZ7c84OVgKIO/VXwJSqFJaMcyRaA0zkdaS6usu9YS3I0a5HQwWKdjTIg4ZeL5Yh4akxfkRjf1+5g"
    "jmWdbbePuTW1boXf2nO98qz0x6Jsh0X09gYlEcxTCfmlo/klijd2KlcRx8GvOhBubqiFKzFnGVeX4JfFb0qRuYHBjfwV"
    "nzLUYvpAMAKQMVpfV3GBYOpH6Nag55FqqKdHhs+CG6Tw61RsUAoICBG8Z1jqCNlrtZnPXy/Yn4ETzJjc0oNCNfMIIbPs"
    "D+OcwWPhrDxunZ2OL/1cy32u/tpAiNKGzYbviGxV/fPU0ONizQykeOThwr4hsNoWvTeRaM/UACkgI6P93dXw1Lb71xpo"
    "hnM5BAwsnn1px3D5Hhj7Kt+nMKua45ThCX68dxB/5cHIOpdZRDlb8miF9NK05xGq11t0XRumEJUjAf0VAAAAAAgrRwqS"
    "9V4HAAHhBJwHAACj8hQZscRn+wIAAAAABFla"
)
_PANDAS_2_3_INFER_STRING_PICKLE = (
    "/Td6WFoAAATm1rRGAgAhARwAAAAQz1jM4AScAmVdAEABTnb3ai9K0E/ZqFYlgEFQeePqSD6FC9Tasqt//mAapSI/fI1w"
    "jxjaCIpctzilwUrzv1FjHzNKHXX/FLrycDfVBYOOLB6Qblfdj4ck2OPVGZs+bQVqb12e0gJQqKqeBJ8yEmKIwXPYDLDu"
    "ljnBnUbTRgZTWa+21vbZXf5Rjk5Hs/hAWILuhCNykXQspZtg/lOXW9+JrQ28pTS7jMxTtjWPFOLS52wsvEiwS8eadImb"
    "AKxmL6oC+yMJErhzCV6qv3OT8qL5HPLJCSORebAcRYFTDiaiUCVJFRinJqxqQ6uQ7zAOftfqV7VOcVmKd43ysMjXeU84"
    "6AcKucmPYgYv0L8ZbGtlnmUfbHO1HInHXCGS2RLgOeHUgqWjwD8CDzKeF6i3OX29U0dh9gl/rq5hG5jnoNovpos2cG7q"
    "1E2r+6tnMsHBf3rBfa1QsQ3B4fp0xdmN+L85r7zOzit+elWQSwwqNYlZOvvpfl9qPe+2bGXPTR588Co/UwAS1zNaCQdV"
    "i/SRynGXq0/X/MPEObxnITUUSORjNtfvp/jwlwMu2IwvAKhuRb8Bv1RzipdJqmFdSO5LA18mEw7w5NvpCalcAPHGsoWp"
    "Xcd6MnEee9jSfjNoTVGgZ9cmNySe9dI0jSFWOx5Y1W+D6fzVwvDSiXEjoHTZ+zf0IKECR2cp4/x3ef51nX1Hr1CrYWFw"
    "xIUZlIb0gHFU80tDtv1c8TBrU4jGFme/iZc9qmZpfoV1cBMsz62oKs6QHKdkNJWW5HLDAxzYizkeryc0xJ0h+d1XzlJt"
    "yZ3h5giYtt51BF3yoMBYft1kTe2TwQAAAAAAoUf9OxlAPToAAYEFnQkAACaeop6xxGf7AgAAAAAEWVo="
)


# --- every kind of DataFrame loads, in every protocol --------------------------------------


def _frame() -> pd.DataFrame:
    index = pd.Index([f"23-{i:06d}" for i in range(6)], name="sequence", dtype=object)
    return pd.DataFrame(
        {
            "277_295": np.linspace(-3.5, 4000.25, 6),
            "count": np.arange(6, dtype=np.int64),
            "small": np.arange(6, dtype=np.int32),
            "label": pd.Series(list("abcdef"), dtype=object).to_numpy(),
            "text": pd.array(list("uvwxyz"), dtype="str"),
            "when": pd.date_range("2023-02-20 08:00", periods=6, freq="37min"),
            "when_tz": pd.date_range("2023-02-20", periods=6, tz="UTC"),
            "when_zone": pd.date_range(
                "2023-02-20", periods=6, tz=zoneinfo.ZoneInfo("Europe/Paris")
            ),
            "kind": pd.Categorical(["OK", "VR", "OK", "NC", "OK", "VR"]),
            "flag": [True, False, True, True, False, False],
            "maybe": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
            "delay": pd.to_timedelta(np.arange(6), unit="s"),
        },
        index=index,
    )


def _frames() -> dict[str, pd.DataFrame]:
    """One small DataFrame per kind of column and index a raw file may hold."""
    n = 4
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    on = pd.date_range("2020-01-01", periods=n)
    frames = {
        "numbers": pd.DataFrame(
            {
                "f8": np.linspace(0, 1, n),
                "i8": np.arange(n),
                "i4": np.arange(n, dtype=np.int32),
                "u1": np.arange(n, dtype=np.uint8),
                "f2": np.arange(n, dtype=np.float16),
                "c16": np.arange(n) + 1j,
                "bool": [True, False] * 2,
                "bytes": np.array([b"a", b"bb", b"c", b"d"]),
            }
        ),
        "object": pd.DataFrame(
            {
                "mixed": pd.Series(["a", None, 1.5, b"x"], dtype=object),
                "numpy": pd.Series(
                    [np.float64(1), np.int64(2), np.bool_(True), np.str_("s")], dtype=object
                ),
                "python": pd.Series(
                    [decimal.Decimal("1.5"), datetime.date(2020, 1, 1), datetime.time(1, 2), 2j],
                    dtype=object,
                ),
                "pandas": pd.Series(
                    [pd.Timestamp("2020-01-01"), pd.NaT, pd.Timedelta(1, "s"), pd.NA], dtype=object
                ),
                "scalars": pd.Series(
                    [pd.Period("2020-01", "M"), pd.Interval(0, 1), pd.offsets.MonthEnd(2), None],
                    dtype=object,
                ),
                "containers": pd.Series(
                    [[1, 2], {"a": (1, 2)}, {1, 2}, frozenset([3])], dtype=object
                ),
                "aware": pd.Series(
                    [
                        datetime.datetime(2020, 1, 1, tzinfo=paris),
                        pd.Timestamp("2020-01-01", tz="UTC"),
                        datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
                        np.datetime64("2020-01-01"),
                    ],
                    dtype=object,
                ),
            }
        ),
        "strings": pd.DataFrame(
            {
                "python": pd.array(["a", "b", None, "d"], dtype="string[python]"),
                "pyarrow": pd.array(["a", "b", None, "d"], dtype="string[pyarrow]"),
                "default": pd.array(["a", "b", None, "d"], dtype="str"),
            }
        ),
        "categorical": pd.DataFrame(
            {
                "text": pd.Categorical(["x", "y", "x", None]),
                "ordered": pd.Categorical([1, 2, 1, 3], ordered=True),
            }
        ),
        "datetime": pd.DataFrame(
            {
                "ns": pd.date_range("2020-01-01", periods=n, freq="h"),
                "s": pd.date_range("2020-01-01", periods=n, freq="D").as_unit("s"),
            }
        ),
        "zones": pd.DataFrame(
            {
                "utc": pd.date_range("2020-01-01", periods=n, tz="UTC"),
                "fixed": pd.date_range(
                    "2020-01-01", periods=n, tz=datetime.timezone(datetime.timedelta(hours=2))
                ),
                "zoneinfo": pd.date_range("2020-01-01", periods=n, tz=paris),
                "text": pd.date_range("2020-01-01", periods=n, tz="Europe/Paris"),
            }
        ),
        "dateutil_zones": pd.DataFrame(
            {
                "tzutc": pd.date_range("2020-01-01", periods=n, tz=dateutil_tz.tzutc()),
                "tzoffset": pd.date_range(
                    "2020-01-01", periods=n, tz=dateutil_tz.tzoffset("X", 3600)
                ),
                "gettz": pd.date_range(
                    "2020-01-01", periods=n, tz=dateutil_tz.gettz("Europe/Paris")
                ),
                "text": pd.date_range("2020-01-01", periods=n, tz="dateutil/Europe/Paris"),
                "tzlocal": pd.date_range("2020-01-01", periods=n, tz=dateutil_tz.tzlocal()),
            }
        ),
        "timedelta": pd.DataFrame(
            {
                "s": pd.to_timedelta(np.arange(n), unit="s"),
                "range": pd.timedelta_range("1D", periods=n),
            }
        ),
        "period": pd.DataFrame(
            {
                "month": pd.period_range("2020-01", periods=n, freq="M"),
                "quarter": pd.period_range("2020Q1", periods=n, freq="Q"),
            }
        ),
        "interval": pd.DataFrame(
            {
                "int": pd.interval_range(0, n),
                "time": pd.IntervalIndex.from_breaks(pd.date_range("2020", periods=n + 1)),
            }
        ),
        "nullable": pd.DataFrame(
            {
                "Int64": pd.array([1, None, 3, 4], dtype="Int64"),
                "UInt8": pd.array([1, None, 3, 4], dtype="UInt8"),
                "boolean": pd.array([True, None, False, True], dtype="boolean"),
                "Float64": pd.array([1.0, None, 3, 4], dtype="Float64"),
            }
        ),
        "sparse": pd.DataFrame(
            {
                "int": pd.arrays.SparseArray([0, 0, 1, 0]),
                "float": pd.arrays.SparseArray([0.0, np.nan, 1.0, 0.0]),
            }
        ),
        "arrow": pd.DataFrame(
            {
                "int": pd.array([1, 2, None, 4], dtype="int64[pyarrow]"),
                "time": pd.array(on, dtype="timestamp[ns][pyarrow]"),
                "time_utc": pd.array(
                    on.tz_localize("UTC"), dtype=pd.ArrowDtype(pa.timestamp("us", tz="UTC"))
                ),
                "decimal": pd.array(
                    [decimal.Decimal("1.5")] * n, dtype=pd.ArrowDtype(pa.decimal128(5, 2))
                ),
                "list": pd.array(
                    [[1], [2, 3], None, []], dtype=pd.ArrowDtype(pa.list_(pa.int64()))
                ),
                "struct": pd.array(
                    [{"x": 1}] * n, dtype=pd.ArrowDtype(pa.struct([("x", pa.int32())]))
                ),
                "dictionary": pd.array(
                    ["a", "b", "a", "b"], dtype=pd.ArrowDtype(pa.dictionary(pa.int8(), pa.string()))
                ),
                "duration": pd.array(
                    [datetime.timedelta(1)] * n, dtype=pd.ArrowDtype(pa.duration("s"))
                ),
                "binary": pd.array([b"a"] * n, dtype=pd.ArrowDtype(pa.binary())),
            }
        ),
        "multiindex": pd.DataFrame(
            np.zeros((n, 4)),
            index=pd.MultiIndex.from_product([["x", "y"], [1, 2]], names=["lot", "n"]),
            columns=pd.MultiIndex.from_product([["277", "380"], [295, 296]]),
        ),
        "range_columns": pd.DataFrame(np.zeros((n, 3))),
        "range_index": pd.DataFrame({"a": np.arange(n)}, index=pd.RangeIndex(10, 18, 2, name="r")),
        "number_columns": pd.DataFrame(np.zeros((n, 3)), columns=[295.5, 296.0, 296.5]),
        "timedelta_index": pd.DataFrame(
            {"a": np.arange(n)}, index=pd.timedelta_range("1h", periods=n, freq="h")
        ),
        "period_index": pd.DataFrame(
            {"a": np.arange(n)}, index=pd.period_range("2020", periods=n, freq="Y")
        ),
        "interval_index": pd.DataFrame({"a": np.arange(n)}, index=pd.interval_range(0, n)),
        "categorical_index": pd.DataFrame(
            {"a": np.arange(n)}, index=pd.CategoricalIndex(list("abab"))
        ),
        "empty": pd.DataFrame(columns=["a", "b"]),
    }
    # a DatetimeIndex keeps its frequency, an offset object of its own
    for freq in ("15min", "2h30min", "D", "B", "C", "bh", "W-MON", "MS", "ME", "SME", "QE-NOV",
                 "YS", "WOM-2TUE", "ms", "us", "ns"):  # fmt: skip
        index = pd.date_range("2020-01-01", periods=n, freq=freq, name="when")
        frames[f"datetime_index_{freq}"] = pd.DataFrame({"a": np.arange(n)}, index=index)
    frames["attrs_and_flags"] = pd.DataFrame({"a": np.arange(n)}).set_flags(
        allows_duplicate_labels=False
    )
    frames["attrs_and_flags"].attrs = {"source": "SA3-01", "version": 3}
    return frames


_KINDS = sorted(_frames())


@pytest.mark.parametrize("kind", _KINDS)
def test_every_kind_of_dataframe_round_trips_in_every_protocol(kind: str) -> None:
    frame = _frames()[kind]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        out = loads_dataframe(pickle.dumps(frame, protocol=protocol), f"{kind}.pkl")
        pd.testing.assert_frame_equal(out, frame)
        assert out.attrs == frame.attrs
        assert out.flags.allows_duplicate_labels == frame.flags.allows_duplicate_labels


def test_dataframe_round_trip_keeps_index_and_zones() -> None:
    df = _frame()
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        out = loads_dataframe(pickle.dumps(df, protocol=protocol), "x.pkl")
        pd.testing.assert_frame_equal(out, df)
        assert out.index.name == "sequence"
        assert out["when_zone"].dt.tz == zoneinfo.ZoneInfo("Europe/Paris")


def test_to_pickle_file_and_every_compression(tmp_path: Path) -> None:
    df = _frame()
    for suffix in ("", ".gz", ".bz2", ".xz"):
        path = tmp_path / f"a.pkl{suffix}"
        df.to_pickle(path)  # pandas picks the compression from the suffix
        frame, sha, _ = read_pickle_dataframe(path)
        pd.testing.assert_frame_equal(frame, df)
        # the hash is that of the file as stored, compressed or not
        assert sha == _sha(path)
        pd.testing.assert_frame_equal(loads_dataframe(path.read_bytes(), path), df)


def test_concatenated_gzip_members_are_read_whole(tmp_path: Path) -> None:
    data = pickle.dumps(_frame(), protocol=4)
    path = tmp_path / "two_members.pkl.gz"
    path.write_bytes(gzip.compress(data[:1000]) + gzip.compress(data[1000:]))
    pd.testing.assert_frame_equal(load_pickle_dataframe(path), _frame())


def test_the_hash_covers_bytes_after_the_pickle(tmp_path: Path) -> None:
    path = tmp_path / "trailing.pkl"
    path.write_bytes(pickle.dumps(_frame()) + b"\x00" * 3_000_000)
    frame, sha, _ = read_pickle_dataframe(path)
    pd.testing.assert_frame_equal(frame, _frame())
    assert sha == _sha(path)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pickle_from_numpy_1_module_names_is_accepted() -> None:
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}).astype({"b": object})
    data = pickle.dumps(df, protocol=2)
    assert b"numpy._core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    pd.testing.assert_frame_equal(loads_dataframe(old, "old.pkl"), df)


def _fixture(text: str) -> bytes:
    return lzma.decompress(base64.b64decode(text))


@pytest.mark.filterwarnings("ignore:numpy.core:DeprecationWarning")  # pandas' own reader
def test_a_pickle_written_by_pandas_2_2_and_numpy_1_26_loads_as_pandas_reads_it() -> None:
    # pandas 2.2.3, numpy 1.26.4, pyarrow 25, protocol 5: pandas.core.* and numpy.core.*
    # module names, one column of each kind (no pytz, no dateutil zone file)
    data = _fixture(_PANDAS_2_2_PICKLE)
    assert b"pandas.core.frame" in data and b"numpy.core" in data
    out = loads_dataframe(data, "old.pkl")
    pd.testing.assert_frame_equal(out, pd.read_pickle(io.BytesIO(data)))
    assert out.index.freq == "15min"
    assert str(out["tz_zoneinfo.t"].dtype) == "datetime64[ns, Europe/Paris]"
    assert str(out["sparse.s"].dtype) == "Sparse[int64, 0]"
    assert str(out["period.q"].dtype) == "period[Q-DEC]"
    assert str(out["interval.j"].dtype) == "interval[datetime64[ns], right]"
    assert str(out["nullable.b"].dtype) == "boolean"
    assert out["categorical.ko"].cat.ordered


def test_a_pickle_of_pandas_2_3_with_inferred_strings_loads() -> None:
    data = _fixture(_PANDAS_2_3_INFER_STRING_PICKLE)
    assert b"ArrowStringArrayNumpySemantics" in data
    out = loads_dataframe(data, "infer.pkl")
    assert out["s"].tolist()[::2] == ["a", "c"]
    assert out["s"].isna().tolist() == [False, True, False]
    assert out.index.tolist() == ["x", "y", "z"] and out.index.name == "sequence"


def test_pytz_zones_need_pytz_and_say_so() -> None:
    data = _fixture(_PYTZ_PICKLE)  # pandas 2.2, tz="Europe/Paris" (pytz)
    try:
        import pytz  # noqa: F401
    except ImportError:
        with pytest.raises(RawDataError) as info:
            loads_dataframe(data, "zones.pkl")
        assert "zones.pkl: the pickle needs pytz._p, which this installation does not" in str(
            info.value
        )
    else:
        out = loads_dataframe(data, "zones.pkl")
        assert str(out["t"].dt.tz) == "Europe/Paris"


def test_a_timestamp_pickled_by_pandas_1_keeps_its_zone() -> None:
    # pandas <= 1.2 wrote (Timestamp, (value, freq, tz))
    old = _Payload(pd.Timestamp, 1_577_836_800_000_000_000, None, datetime.UTC)
    df = pd.DataFrame({"o": pd.Series([old, None], dtype=object)})
    out = loads_dataframe(pickle.dumps(df, protocol=2), "old.pkl")
    assert out["o"].iloc[0] == pd.Timestamp("2020-01-01", tz="UTC")
    assert out["o"].iloc[0].tzinfo is not None


# --- what is refused, and that it leaves no trace -----------------------------------------


class _Payload:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args):
        # only so that pickle accepts an instance as the callable of another payload
        raise NotImplementedError


def _assert_refused(data: bytes, marker: Path, asked: str, why: str = "not pandas/numpy data"):
    with pytest.raises(UnsafePickleError) as info:
        loads_dataframe(data, "evil.pkl")
    message = str(info.value)
    assert message.startswith("evil.pkl: refused to load: the pickle asks for ")
    assert asked in message
    assert why in message
    assert not marker.exists()
    return message


def test_os_system_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Payload(os.system, f"touch {marker}"))
    _assert_refused(data, marker, "asks for os.system, which")
    # sanity: the same bytes through plain pickle do run the command
    pickle.loads(data)
    assert marker.exists()


def test_open_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "written"
    _assert_refused(pickle.dumps(_Payload(open, str(marker), "w")), marker, "io.open")


def test_payload_hidden_in_a_dataframe_cell_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "cell"
    df = pd.DataFrame({"a": pd.Series([1, _Payload(os.system, f"touch {marker}")], dtype=object)})
    _assert_refused(pickle.dumps(df), marker, ".system")


@pytest.mark.parametrize(
    ("func", "args", "asked"),
    [
        (pd.eval, ("1 + 1",), "eval"),
        (pd.read_pickle, ("/nonexistent.pkl",), "read_pickle"),
        (pd.read_csv, ("/etc/hostname",), "read_csv"),
        (eval, ("1 + 1",), "builtins.eval"),
        (exec, ("x = 1",), "builtins.exec"),
        (__import__, ("subprocess",), "builtins.__import__"),
        (np.load, ("/nonexistent.npy",), "load"),
    ],
)
def test_functions_outside_the_allow_list_are_refused(func, args, asked, tmp_path: Path) -> None:
    _assert_refused(pickle.dumps(_Payload(func, *args)), tmp_path / "none", asked)


def test_subprocess_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "sub"
    data = pickle.dumps(_Payload(subprocess.call, ["touch", str(marker)]))
    _assert_refused(data, marker, "subprocess.call")


def test_classes_with_side_effects_are_refused_even_under_numpy_and_pandas(tmp_path: Path) -> None:
    created = tmp_path / "mapped.bin"
    _assert_refused(
        pickle.dumps(_Payload(np.memmap, str(created), np.float64, "w+", 0, (10,))),
        created,
        "numpy.memmap",
        "which maps a file into memory",
    )
    store = tmp_path / "store.h5"
    _assert_refused(pickle.dumps(_Payload(pd.HDFStore, str(store), "w")), store, "HDFStore")


def test_getattr_is_limited_to_data_uses(tmp_path: Path) -> None:
    out = tmp_path / "dump.csv"
    frame = pd.DataFrame({"a": [1]})
    method = _Payload(getattr, pd.DataFrame, "to_csv")
    data = pickle.dumps(_Payload(method, frame, str(out)))
    with pytest.raises(UnsafePickleError, match=r"getattr\(DataFrame, 'to_csv'\)"):
        loads_dataframe(data, "evil.pkl")
    assert not out.exists()


@pytest.mark.parametrize(
    ("payload", "asked", "why"),
    [
        # a few bytes of pickle must not stand for gigabytes of memory
        (_Payload(bytearray, 10**12), "builtins.bytearray(1000000000000)", "a size, not data"),
        (_Payload(bytes, 10**12), "builtins.bytes(1000000000000)", "a size, not data"),
        (_Payload(frozenset, _Payload(range, 10**12)), "__builtin__.xrange", "a sequence of any"),
        # protocol 2 stores bytes through _codecs.encode, to Latin-1 only
        (_Payload(codecs.encode, "x", "zlib"), "_codecs.encode(…, 'zlib')", "not pandas/numpy"),
        (_Payload(codecs.encode, "x", "rot13"), "_codecs.encode(…, 'rot13')", "not pandas/numpy"),
    ],
)
def test_helpers_of_the_protocol_are_limited_to_what_data_needs(payload, asked, why) -> None:
    with pytest.raises(UnsafePickleError) as info:
        loads_dataframe(pickle.dumps(payload, protocol=2), "evil.pkl")
    assert asked in str(info.value) and why in str(info.value)


def test_a_malformed_pyarrow_array_is_refused_before_it_is_read() -> None:
    good = pa.array(["a", "bb", None])
    restore, (state,) = good.__reduce__()
    # a length far past the offsets buffer would make Arrow read outside it
    bad = (state[0], 1_000_000, *state[2:])
    with pytest.raises(
        RawDataError, match=r"evil\.pkl: a pyarrow array in the pickle is malformed"
    ):
        loads_dataframe(pickle.dumps(_Payload(restore, bad)), "evil.pkl")
    assert loads_dataframe(pickle.dumps(pd.DataFrame({"s": pd.array(good, dtype="str")})), "x")[
        "s"
    ].tolist()[:2] == ["a", "bb"]


# --- time zones that are files ------------------------------------------------------------


def test_dateutil_tzfile_never_opens_what_the_pickle_names(tmp_path: Path) -> None:
    fifo = tmp_path / "zone_fifo"
    os.mkfifo(fifo)
    # called with a path, as a pickle could: refused (reading the FIFO would block for ever)
    message = _assert_refused(
        pickle.dumps(_Payload(dateutil_tz.tzfile, str(fifo))),
        tmp_path / "none",
        f"{dateutil_tz.tzfile.__module__}.tzfile",
        "which opens the file named in its arguments",
    )
    assert "zone_fifo" not in message
    # with no file object, as dateutil <= 2.9 pickles a zone: built without reading
    empty = f"cdateutil.tz.tz\ntzfile\n(NV{fifo}\ntR.".encode()
    with pytest.raises(RawDataError, match=r"holds a dateutil\.tz\..*tzfile, not a pandas"):
        loads_dataframe(empty, "zone.pkl")


def test_dateutil_4_unpickle_takes_no_other_class(tmp_path: Path) -> None:
    _tzfile = pytest.importorskip("dateutil.tz._tzfile")  # dateutil >= 4
    data = pickle.dumps(_Payload(_tzfile._unpickle, pd.DataFrame, None, None, ()))
    _assert_refused(data, tmp_path / "none", "dateutil.tz._tzfile._unpickle(<class ")


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$SECRETHASH:19000:0:99999:7:::\n")
    return secret


def test_a_time_zone_given_as_a_file_path_is_refused(tmp_path: Path) -> None:
    secret = _secret(tmp_path)
    by_name = pickle.dumps(_Payload(pd.DatetimeTZDtype, "ns", f"dateutil/{secret}"))
    # sanity: without the guard, pandas hands the path to dateutil, which reads the file
    with pytest.raises(ValueError, match="magic not found"):
        pickle.loads(by_name)
    message = _assert_refused(
        by_name, tmp_path / "none", "dateutil.tz.gettz(", "a time zone read from a file path"
    )
    assert "SECRETHASH" not in message
    # a constructor reached through NEWOBJ_EX, with the zone as a keyword
    keyword = _NewObjEx(pd.DatetimeIndex, (["2020-01-01"],), {"tz": f"dateutil/../..{secret}"})
    _assert_refused(
        pickle.dumps(keyword, protocol=4),
        tmp_path / "none",
        "dateutil.tz.gettz('../..",
        "a time zone read from a file path",
    )
    arrow = pickle.dumps(_Payload(pa.timestamp, "s", str(secret)))
    _assert_refused(arrow, tmp_path / "none", "pyarrow.lib.timestamp(", "read from a file path")


class _NewObjEx:
    def __init__(self, cls, args, kwargs):
        self.cls, self.args, self.kwargs = cls, args, kwargs

    def __reduce_ex__(self, protocol):
        return copyreg.__newobj_ex__, (self.cls, self.args, self.kwargs)


def test_the_zone_guard_is_lifted_after_reading(tmp_path: Path) -> None:
    from pandas._libs.tslibs import timezones

    original = timezones.dateutil_gettz
    with refuse_zone_paths(tmp_path / "a.pkl"):
        with pytest.raises(UnsafePickleError, match=r"a\.pkl: refused to load: .*gettz"):
            pd.DatetimeTZDtype("ns", "dateutil//etc/hostname")
        # zone keys are looked up as before
        assert "Europe/Paris" in str(pd.DatetimeTZDtype("ns", "dateutil/Europe/Paris"))
        with refuse_zone_paths(tmp_path / "b.pkl"):
            assert timezones.dateutil_gettz is not original
        assert timezones.dateutil_gettz is not original
    assert timezones.dateutil_gettz is original


# --- refused without running anything: checked in a fresh interpreter ---------------------

_NO_TRACE = """
import json, sys
from pathlib import Path
from spectragrid.data.unpickle import read_pickle_dataframe
before = set(sys.modules)
try:
    read_pickle_dataframe(Path(sys.argv[1]))
    outcome = "loaded"
except Exception as err:
    outcome = f"{type(err).__name__}: {err}"
except BaseException as err:
    outcome = f"ESCAPED {type(err).__name__}: {err}"
print(json.dumps({"outcome": outcome, "imported": sorted(set(sys.modules) - before)}))
"""


def _fresh_interpreter(code: str, *args: str, timeout: float = 120) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("data", "asked", "module"),
    [
        # importing numpy.f2py.__main__ runs f2py's command line, which exits the process
        (b"\x80\x04cnumpy.f2py.__main__\nX\n.", "numpy.f2py.__main__.X", "numpy.f2py"),
        (b"\x80\x04cpyarrow.tests\nread_record_batch\n.", "pyarrow.tests.read", "pyarrow.tests"),
        # importing `this` prints the Zen of Python
        (b"\x80\x04cimportlib\nimport_module\n(Vthis\ntR.", "importlib.import_module", "this"),
        (b"\x80\x04cthis\ns\n.", "this.s", "this"),
    ],
)
def test_refused_modules_are_never_imported(tmp_path: Path, data, asked, module) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    seen = _fresh_interpreter(_NO_TRACE, str(path))
    assert seen["outcome"].startswith(f"UnsafePickleError: {path}: refused to load: ")
    assert f"asks for {asked}" in seen["outcome"]
    assert not [m for m in seen["imported"] if m == module or m.startswith(module + ".")]


def test_the_f2py_pickle_runs_f2py_through_plain_pickle(tmp_path: Path) -> None:
    # sanity of the case above: what the allow-list stops is real
    code = "import pickle; pickle.loads(b'\\x80\\x04cnumpy.f2py.__main__\\nX\\n.')"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert "f2py" in (proc.stdout + proc.stderr).lower()


def test_a_code_payload_leaves_no_marker_in_a_fresh_interpreter(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl.gz"
    frame = pd.DataFrame({"a": pd.Series([_Payload(os.system, f"touch {marker}")], dtype=object)})
    path.write_bytes(gzip.compress(pickle.dumps(frame)))
    seen = _fresh_interpreter(_NO_TRACE, str(path))
    assert "refused to load: the pickle asks for os.system" in seen["outcome"]
    assert not marker.exists()


# --- what is not a regular file is never opened -------------------------------------------

_KINDS_OF_FILE = """
import json, os, socket, sys
from pathlib import Path
from spectragrid.data.unpickle import read_pickle_dataframe
folder = Path(sys.argv[1])
os.mkfifo(folder / "fifo.pkl")
(folder / "dir.pkl").mkdir()
(folder / "zero.pkl").symlink_to("/dev/zero")
(folder / "dangling.pkl").symlink_to(folder / "gone.pkl")
server = socket.socket(socket.AF_UNIX)
server.bind(str(folder / "socket.pkl"))
said = {}
for name in ["fifo.pkl", "dir.pkl", "zero.pkl", "dangling.pkl", "socket.pkl", "missing.pkl"]:
    try:
        read_pickle_dataframe(folder / name)
        said[name] = "loaded"
    except Exception as err:
        said[name] = f"{type(err).__name__}: {err}"
print(json.dumps(said))
"""


def test_only_regular_files_are_opened(tmp_path: Path) -> None:
    # in a child process with a timeout: opening the FIFO would block for ever
    said = _fresh_interpreter(_KINDS_OF_FILE, str(tmp_path), timeout=60)
    expected = {
        "fifo.pkl": "is a named pipe (FIFO), not a regular pickle file",
        "dir.pkl": "is a directory, not a regular pickle file",
        "zero.pkl": "is a character device (a link to /dev/zero), not a regular pickle file",
        "dangling.pkl": f"no such file (a link to {tmp_path / 'gone.pkl'}, which does not exist)",
        "socket.pkl": "is a socket, not a regular pickle file",
        "missing.pkl": "no such file",
    }
    for name, text in expected.items():
        assert said[name] == f"RawDataError: {tmp_path / name}: {text}"


# --- compressed files: streamed, capped -----------------------------------------------------


def _opcode_bomb(kind: str, decompressed: int) -> bytes:
    """A compressed pickle that never ends: protocol header, then NONE/POP opcodes.

    Built from concatenated members, each compressed once, so that a test can
    make a file that expands to gigabytes in milliseconds.
    """
    compress = {"gzip": gzip.compress, "bz2": __import__("bz2").compress, "xz": lzma.compress}[kind]
    block = 4 << 20
    body = compress(b"N0" * (block // 2))
    return compress(b"\x80\x02" + b"N0" * (block // 2)) + body * (decompressed // block)


@pytest.mark.parametrize("kind", ["gzip", "bz2", "xz"])
def test_a_decompression_bomb_stops_at_the_cap(tmp_path: Path, kind: str) -> None:
    data = _opcode_bomb(kind, 1 << 30)
    assert len(data) * MAX_EXPANSION < MIN_DECOMPRESSED_CAP  # a small file: the floor applies
    path = tmp_path / f"bomb.pkl.{kind}"
    path.write_bytes(data)
    for read in (lambda: load_pickle_dataframe(path), lambda: loads_dataframe(data, path)):
        with pytest.raises(RawDataError) as info:
            read()
        assert str(info.value).startswith(
            f"{path}: refused: it decompresses to more than 64.0 MiB, the cap for a "
        )
        assert f"{kind} file ({MAX_EXPANSION} times its size, at least 64.0 MiB)" in str(info.value)
        assert "decompression bomb" in str(info.value)


def test_a_bomb_of_zeros_is_refused_at_its_first_byte(tmp_path: Path) -> None:
    # the shape of the classic bomb: 6 GiB of zeros in about 1 MB of xz
    path = tmp_path / "zeros.pkl.xz"
    path.write_bytes(lzma.compress(bytes(16 << 20)) * 384)
    with pytest.raises(RawDataError, match=r"zeros\.pkl\.xz: cannot read: .*not a pickle"):
        load_pickle_dataframe(path)


def test_a_truncated_compressed_file_is_named(tmp_path: Path) -> None:
    data = gzip.compress(pickle.dumps(_frame()))
    path = tmp_path / "cut.pkl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RawDataError, match=r"cut\.pkl\.gz: the gzip file is truncated or corrupt"):
        load_pickle_dataframe(path)


def test_a_declared_size_that_does_not_fit_in_memory_is_named() -> None:
    # BINBYTES8 of one pebibyte: the unpickler allocates before it reads
    data = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 50) + b"."
    with pytest.raises(RawDataError, match=r"huge\.pkl: ran out of memory while unpickling"):
        loads_dataframe(data, "huge.pkl")


# --- whatever unpickling raises becomes an error naming the file ---------------------------


class _Raising(io.RawIOBase):
    """A stream whose reads raise: what a pickle's code could have raised before."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise self.error


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (SystemExit(2), "f.pkl: cannot read: unpickling tried to exit the process (2)"),
        (MemoryError(), "f.pkl: ran out of memory while unpickling it"),
        (RecursionError("deep"), "f.pkl: cannot read: the pickle nests objects too deeply"),
        (OSError("disk"), "f.pkl: cannot read: the file is truncated or not a pickle (OSError"),
    ],
)
def test_base_exceptions_while_unpickling_name_the_file(error, said) -> None:
    with pytest.raises(RawDataError) as info:
        load_dataframe(io.BufferedReader(_Raising(error)), "f.pkl")
    assert str(info.value).startswith(said)


def test_a_keyboard_interrupt_is_the_users_and_goes_through() -> None:
    with pytest.raises(KeyboardInterrupt):
        load_dataframe(io.BufferedReader(_Raising(KeyboardInterrupt())), "f.pkl")


# --- other reasons a file is not a DataFrame ------------------------------------------------


def test_refusal_names_path_module_and_name(tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(_Payload(os.system, "true")))
    with pytest.raises(UnsafePickleError) as info:
        load_pickle_dataframe(path)
    assert info.value.path == str(path)
    assert info.value.name == "system"
    assert isinstance(info.value, RawDataError)
    assert str(path) in str(info.value)


def test_truncated_file_is_a_raw_data_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    data = pickle.dumps(_frame())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RawDataError, match=r"cut\.pkl: .*truncated or not a pickle"):
        load_pickle_dataframe(path)


@pytest.mark.parametrize("content", [b"", b"sequence,277_295\n1,2\n", b"\x1f\x8b\x08garbage"])
def test_not_a_pickle(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(RawDataError, match=r"bad\.pkl: .*(empty|truncated|corrupt)"):
        load_pickle_dataframe(path)


@pytest.mark.parametrize(
    ("obj", "type_name"),
    [({"a": 1}, "builtins.dict"), (pd.Series([1.0]), "pandas.Series"), (np.zeros(3), "ndarray")],
)
def test_pickle_that_is_not_a_dataframe(tmp_path: Path, obj, type_name: str) -> None:
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(
        RawDataError, match=r"other\.pkl: the pickle holds a .*not a pandas DataFrame"
    ) as info:
        load_pickle_dataframe(path)
    assert type_name in str(info.value)


def test_a_long_error_from_inside_the_pickle_is_cut(tmp_path: Path) -> None:
    data = pickle.dumps(_Payload(pd.Timestamp, "x" * 100_000), protocol=2)
    with pytest.raises(RawDataError) as info:
        loads_dataframe(data, "long.pkl")
    assert str(info.value).startswith("long.pkl: cannot read")
    assert len(str(info.value)) < 400
