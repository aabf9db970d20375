"""Archives built in memory for upload tests: valid ones and deliberately hostile ones."""
import io
import tarfile
import zipfile


def tar_archive(files: dict[str, bytes], extra: tuple[tarfile.TarInfo, ...] = (), mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(bytes(info.size)) if info.size else None)
    return buf.getvalue()


def zip_archive(files: dict[str, bytes], extra: tuple[tuple[zipfile.ZipInfo, bytes], ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)
    return buf.getvalue()
